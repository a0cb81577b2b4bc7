//! Streaming AES-GCM (NIST SP 800-38D) in constant memory: AES-CTR (`ctr::Ctr32BE`) and GHASH (`ghash`)
//! driven chunk by chunk. The output is byte for byte what the one-shot `aes-gcm` crate produces for the
//! same key, IV and (empty) associated data, for 12-byte IVs and for other IV lengths (16 bytes in legacy
//! `aesgcm://` URLs), whose pre-counter block J0 is derived with GHASH.
//!
//! Work is done in slices of [`INTERLEAVE`] bytes: each slice is encrypted and then hashed while it is
//! still in the CPU cache (the one-shot crate makes two passes over the whole buffer). On the machines
//! measured so far this makes no measurable difference either way: the `file_encryption` bench puts
//! streaming and one-shot within a few percent of each other, the cipher and GHASH code being the same.

use aes::cipher::consts::U16;
use aes::cipher::{BlockCipherEncrypt, InnerIvInit, KeyInit, StreamCipher};
use aes::{Aes128, Aes256};
use ghash::universal_hash::UniversalHash;
use ghash::GHash;

use super::error::FileCryptoError;

/// Size of the slices that are encrypted then hashed together (fits in L1/L2 cache).
pub const INTERLEAVE: usize = 16 * 1024;

/// Length of a GCM authentication tag.
pub const TAG_LEN: usize = 16;

/// Most plaintext one GCM key/IV pair may protect: 2^32 - 2 blocks (SP 800-38D §5.2.1.1).
pub const MAX_PLAINTEXT: u64 = ((1u64 << 32) - 2) * 16;

/// Longest IV accepted (GCM allows more, nobody uses more; keeps J0 derivation bounded).
pub const MAX_IV_LEN: usize = 128;

/// An AES key for file encryption: AES-128 or AES-256.
#[derive(Clone, PartialEq, Eq)]
pub enum FileKey {
    /// 16-byte key (`urn:xmpp:ciphers:aes-128-gcm-nopadding:0`).
    Aes128([u8; 16]),
    /// 32-byte key (`aesgcm://` URLs, `urn:xmpp:ciphers:aes-256-gcm-nopadding:0`).
    Aes256([u8; 32]),
}

impl FileKey {
    /// A key from its bytes: 16 bytes is AES-128, 32 bytes AES-256.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, FileCryptoError> {
        match bytes.len() {
            16 => {
                let mut k = [0u8; 16];
                k.copy_from_slice(bytes);
                Ok(FileKey::Aes128(k))
            }
            32 => {
                let mut k = [0u8; 32];
                k.copy_from_slice(bytes);
                Ok(FileKey::Aes256(k))
            }
            n => Err(FileCryptoError::KeyLength(n)),
        }
    }

    /// A fresh random AES-256 key.
    pub fn random_aes256() -> Self {
        FileKey::Aes256(super::random_bytes())
    }

    /// A fresh random AES-128 key.
    pub fn random_aes128() -> Self {
        FileKey::Aes128(super::random_bytes())
    }

    /// The key bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            FileKey::Aes128(k) => k,
            FileKey::Aes256(k) => k,
        }
    }
}

impl std::fmt::Debug for FileKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        match self {
            FileKey::Aes128(_) => f.write_str("FileKey::Aes128(<redacted>)"),
            FileKey::Aes256(_) => f.write_str("FileKey::Aes256(<redacted>)"),
        }
    }
}

type Block = ghash::Block;

struct Core<C: BlockCipherEncrypt<BlockSize = U16>> {
    ctr: ctr::Ctr32BE<C>,
    ghash: GHash,
    mask: [u8; 16],
    pending: [u8; 16],
    pending_len: usize,
    len: u64,
}

impl<C: BlockCipherEncrypt<BlockSize = U16>> Core<C> {
    fn new(cipher: C, iv: &[u8]) -> Result<Self, FileCryptoError> {
        if iv.is_empty() || iv.len() > MAX_IV_LEN {
            return Err(FileCryptoError::IvLength(iv.len()));
        }
        let mut h = Block::default();
        cipher.encrypt_block(&mut h);
        let ghash = GHash::new(&h);
        let j0: Block = if iv.len() == 12 {
            let mut b = Block::default();
            b[..12].copy_from_slice(iv);
            b[15] = 1;
            b
        } else {
            let mut g = ghash.clone();
            g.update_padded(iv);
            let mut b = Block::default();
            b[8..].copy_from_slice(&((iv.len() as u64) * 8).to_be_bytes());
            g.update(std::slice::from_ref(&b));
            g.finalize()
        };
        let mut ctr = ctr::Ctr32BE::<C>::from_core(ctr::CtrCore::inner_iv_init(cipher, &j0));
        let mut mask = [0u8; 16];
        ctr.apply_keystream(&mut mask);
        Ok(Core {
            ctr,
            ghash,
            mask,
            pending: [0; 16],
            pending_len: 0,
            len: 0,
        })
    }

    fn account(&mut self, n: usize) -> Result<(), FileCryptoError> {
        let len = self
            .len
            .checked_add(n as u64)
            .filter(|l| *l <= MAX_PLAINTEXT)
            .ok_or(FileCryptoError::TooLong)?;
        self.len = len;
        Ok(())
    }

    /// Feeds ciphertext to GHASH, keeping an incomplete block for the next call.
    fn hash(&mut self, mut data: &[u8]) {
        if self.pending_len > 0 {
            let take = (16 - self.pending_len).min(data.len());
            self.pending[self.pending_len..self.pending_len + take].copy_from_slice(&data[..take]);
            self.pending_len += take;
            data = &data[take..];
            if self.pending_len < 16 {
                return;
            }
            let block = Block::from(self.pending);
            self.ghash.update(std::slice::from_ref(&block));
            self.pending_len = 0;
        }
        let full = data.len() - data.len() % 16;
        // A whole number of blocks: no padding is added.
        self.ghash.update_padded(&data[..full]);
        let rest = &data[full..];
        self.pending[..rest.len()].copy_from_slice(rest);
        self.pending_len = rest.len();
    }

    fn encrypt(&mut self, buf: &mut [u8]) -> Result<(), FileCryptoError> {
        self.account(buf.len())?;
        for slice in buf.chunks_mut(INTERLEAVE) {
            self.ctr.apply_keystream(slice);
            self.hash(slice);
        }
        Ok(())
    }

    fn decrypt(&mut self, buf: &mut [u8]) -> Result<(), FileCryptoError> {
        self.account(buf.len())?;
        for slice in buf.chunks_mut(INTERLEAVE) {
            self.hash(slice);
            self.ctr.apply_keystream(slice);
        }
        Ok(())
    }

    fn tag(mut self) -> [u8; TAG_LEN] {
        if self.pending_len > 0 {
            let n = self.pending_len;
            self.ghash.update_padded(&self.pending[..n]);
        }
        let mut lens = Block::default();
        // No associated data: the first 8 bytes stay zero.
        lens[8..].copy_from_slice(&(self.len * 8).to_be_bytes());
        self.ghash.update(std::slice::from_ref(&lens));
        let s = self.ghash.finalize();
        let mut tag = [0u8; TAG_LEN];
        for (t, (a, b)) in tag.iter_mut().zip(s.iter().zip(self.mask.iter())) {
            *t = a ^ b;
        }
        tag
    }
}

enum Inner {
    A128(Box<Core<Aes128>>),
    A256(Box<Core<Aes256>>),
}

impl Inner {
    fn new(key: &FileKey, iv: &[u8]) -> Result<Self, FileCryptoError> {
        Ok(match key {
            FileKey::Aes128(k) => Inner::A128(Box::new(Core::new(Aes128::new(k.into()), iv)?)),
            FileKey::Aes256(k) => Inner::A256(Box::new(Core::new(Aes256::new(k.into()), iv)?)),
        })
    }
    fn len(&self) -> u64 {
        match self {
            Inner::A128(c) => c.len,
            Inner::A256(c) => c.len,
        }
    }
}

/// Streaming AES-GCM encryption: call [`update`](Self::update) on consecutive pieces of plaintext (any
/// sizes), then [`finish`](Self::finish) for the 16-byte tag.
pub struct Encryptor(Inner);

impl Encryptor {
    /// An encryptor for `key` and `iv` (12 bytes normally; 16 bytes for legacy `aesgcm://` URLs).
    pub fn new(key: &FileKey, iv: &[u8]) -> Result<Self, FileCryptoError> {
        Inner::new(key, iv).map(Encryptor)
    }

    /// Encrypts `buf` in place. Fails only past [`MAX_PLAINTEXT`] bytes in total (nothing is changed then).
    pub fn update(&mut self, buf: &mut [u8]) -> Result<(), FileCryptoError> {
        match &mut self.0 {
            Inner::A128(c) => c.encrypt(buf),
            Inner::A256(c) => c.encrypt(buf),
        }
    }

    /// Bytes encrypted so far.
    pub fn len(&self) -> u64 {
        self.0.len()
    }

    /// Whether nothing was encrypted yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The authentication tag of everything encrypted.
    pub fn finish(self) -> [u8; TAG_LEN] {
        match self.0 {
            Inner::A128(c) => c.tag(),
            Inner::A256(c) => c.tag(),
        }
    }
}

impl std::fmt::Debug for Encryptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encryptor")
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

/// Streaming AES-GCM decryption.
///
/// **The plaintext [`update`](Self::update) writes is not authenticated** until
/// [`finish`](Self::finish) returns `Ok`: callers must keep it provisional (a temporary file, see
/// [`super::aesgcm::decrypt_to_file`]) and throw it away on error.
pub struct Decryptor(Inner);

impl Decryptor {
    /// A decryptor for `key` and `iv`.
    pub fn new(key: &FileKey, iv: &[u8]) -> Result<Self, FileCryptoError> {
        Inner::new(key, iv).map(Decryptor)
    }

    /// Decrypts `buf` in place (provisional plaintext, see the type's documentation).
    pub fn update(&mut self, buf: &mut [u8]) -> Result<(), FileCryptoError> {
        match &mut self.0 {
            Inner::A128(c) => c.decrypt(buf),
            Inner::A256(c) => c.decrypt(buf),
        }
    }

    /// Bytes decrypted so far.
    pub fn len(&self) -> u64 {
        self.0.len()
    }

    /// Whether nothing was decrypted yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Checks the tag (in constant time). `Err(FileCryptoError::TagMismatch)` means the data was altered
    /// or the key/IV is wrong: everything `update` produced must be discarded.
    pub fn finish(self, tag: &[u8]) -> Result<(), FileCryptoError> {
        let expected = match self.0 {
            Inner::A128(c) => c.tag(),
            Inner::A256(c) => c.tag(),
        };
        if tag.len() != TAG_LEN {
            return Err(FileCryptoError::TagMismatch);
        }
        let diff = expected
            .iter()
            .zip(tag.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if diff == 0 {
            Ok(())
        } else {
            Err(FileCryptoError::TagMismatch)
        }
    }
}

impl std::fmt::Debug for Decryptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decryptor")
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

/// Decryption of a stream whose last 16 bytes are the tag (the `aesgcm://` file layout), fed in pieces
/// of any size: the last 16 bytes seen are held back until [`finish`](Self::finish).
pub struct TrailingTagDecryptor {
    inner: Decryptor,
    held: [u8; TAG_LEN],
    held_len: usize,
}

impl TrailingTagDecryptor {
    /// A decryptor for `key` and `iv`.
    pub fn new(key: &FileKey, iv: &[u8]) -> Result<Self, FileCryptoError> {
        Ok(TrailingTagDecryptor {
            inner: Decryptor::new(key, iv)?,
            held: [0; TAG_LEN],
            held_len: 0,
        })
    }

    /// Takes the next piece of the encrypted stream in `buf` and decrypts in place what is certainly not
    /// part of the tag; returns how many bytes at the start of `buf` are now (provisional) plaintext.
    /// The caller must treat `buf[n..]` as consumed. The output may lag the input by up to 16 bytes.
    pub fn update(&mut self, buf: &mut [u8]) -> Result<usize, FileCryptoError> {
        let total = self.held_len + buf.len();
        if total <= TAG_LEN {
            self.held[self.held_len..total].copy_from_slice(buf);
            self.held_len = total;
            return Ok(0);
        }
        // Everything but the last 16 bytes of (held ++ buf) is ciphertext to emit, in order.
        let emit = total - TAG_LEN;
        let mut new_held = [0u8; TAG_LEN];
        // The new held bytes are the last 16 of (held ++ buf).
        if buf.len() >= TAG_LEN {
            new_held.copy_from_slice(&buf[buf.len() - TAG_LEN..]);
        } else {
            let from_held = TAG_LEN - buf.len();
            new_held[..from_held]
                .copy_from_slice(&self.held[self.held_len - from_held..self.held_len]);
            new_held[from_held..].copy_from_slice(buf);
        }
        // Output = first `emit` bytes of (held ++ buf), written to the front of buf. Held bytes that go
        // out (at most 16) come first, so shift buf right by that many within its emitted part.
        let out_held = self.held_len.min(emit);
        let out_buf = emit - out_held;
        buf.copy_within(0..out_buf, out_held);
        buf[..out_held].copy_from_slice(&self.held[..out_held]);
        self.held = new_held;
        self.held_len = TAG_LEN;
        self.inner.update(&mut buf[..emit])?;
        Ok(emit)
    }

    /// Bytes of plaintext released so far (provisionally).
    pub fn len(&self) -> u64 {
        self.inner.len()
    }

    /// Whether nothing was released yet.
    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }

    /// Ends the stream: checks the held-back tag. `Err(Truncated)` if the stream was shorter than a tag.
    pub fn finish(self) -> Result<(), FileCryptoError> {
        if self.held_len < TAG_LEN {
            return Err(FileCryptoError::Truncated);
        }
        self.inner.finish(&self.held)
    }
}

impl std::fmt::Debug for TrailingTagDecryptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrailingTagDecryptor")
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}
