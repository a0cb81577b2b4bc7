//! Streaming AES-GCM (NIST SP 800-38D) in constant memory: AES-CTR (`ctr::Ctr32BE`) and GHASH (`ghash`)
//! driven chunk by chunk. The output is byte for byte what the one-shot `aes-gcm` crate produces for the
//! same key, IV and (empty) associated data, for 12-byte IVs and for other IV lengths (16 bytes in legacy
//! `aesgcm://` URLs), whose pre-counter block J0 is derived with GHASH.
//!
//! On x86-64 CPUs with AES-NI and PCLMULQDQ (and feature `simd-gcm`, on by default) the work is done by
//! a fused kernel (`gcm_x86.rs`, the crate's only unsafe code) that encrypts and hashes eight blocks per
//! step; elsewhere by the portable path below, in slices of [`INTERLEAVE`] bytes, each slice encrypted
//! and then hashed while it is still in the CPU cache (measured at parity with the one-shot crate, the
//! cipher and GHASH code being the same). Tests check both paths against the one-shot crate.

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
        self.len = checked_len(self.len, n)?;
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
    /// The fused x86-64 kernel and the byte count.
    #[cfg(all(feature = "simd-gcm", target_arch = "x86_64"))]
    Fused(Box<super::gcm_x86::Fused>, u64),
}

impl Inner {
    fn new(key: &FileKey, iv: &[u8]) -> Result<Self, FileCryptoError> {
        if iv.is_empty() || iv.len() > MAX_IV_LEN {
            return Err(FileCryptoError::IvLength(iv.len()));
        }
        #[cfg(all(feature = "simd-gcm", target_arch = "x86_64"))]
        if let Some(k) = super::gcm_x86::Fused::new(key.as_bytes(), iv) {
            return Ok(Inner::Fused(k, 0));
        }
        Self::portable(key, iv)
    }

    /// The `ctr` + `ghash` path, whatever the CPU.
    fn portable(key: &FileKey, iv: &[u8]) -> Result<Self, FileCryptoError> {
        Ok(match key {
            FileKey::Aes128(k) => Inner::A128(Box::new(Core::new(Aes128::new(k.into()), iv)?)),
            FileKey::Aes256(k) => Inner::A256(Box::new(Core::new(Aes256::new(k.into()), iv)?)),
        })
    }

    fn len(&self) -> u64 {
        match self {
            Inner::A128(c) => c.len,
            Inner::A256(c) => c.len,
            #[cfg(all(feature = "simd-gcm", target_arch = "x86_64"))]
            Inner::Fused(_, len) => *len,
        }
    }

    fn apply(&mut self, buf: &mut [u8], encrypt: bool) -> Result<(), FileCryptoError> {
        match self {
            Inner::A128(c) if encrypt => c.encrypt(buf),
            Inner::A128(c) => c.decrypt(buf),
            Inner::A256(c) if encrypt => c.encrypt(buf),
            Inner::A256(c) => c.decrypt(buf),
            #[cfg(all(feature = "simd-gcm", target_arch = "x86_64"))]
            Inner::Fused(k, len) => {
                *len = checked_len(*len, buf.len())?;
                if encrypt {
                    k.apply::<true>(buf);
                } else {
                    k.apply::<false>(buf);
                }
                Ok(())
            }
        }
    }

    fn tag(self) -> [u8; TAG_LEN] {
        match self {
            Inner::A128(c) => c.tag(),
            Inner::A256(c) => c.tag(),
            #[cfg(all(feature = "simd-gcm", target_arch = "x86_64"))]
            Inner::Fused(k, len) => k.tag(len),
        }
    }
}

/// `len + n`, or `TooLong` past [`MAX_PLAINTEXT`].
fn checked_len(len: u64, n: usize) -> Result<u64, FileCryptoError> {
    len.checked_add(n as u64)
        .filter(|l| *l <= MAX_PLAINTEXT)
        .ok_or(FileCryptoError::TooLong)
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
        self.0.apply(buf, true)
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
        self.0.tag()
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
        self.0.apply(buf, false)
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
        let expected = self.0.tag();
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

#[cfg(test)]
mod tests {
    use super::*;
    use aes_gcm::aead::AeadInOut;
    use aes_gcm::aes::{Aes128 as A128, Aes256 as A256};
    use aes_gcm::AesGcm;

    /// Deterministic test bytes.
    fn bytes(n: usize, seed: u64) -> Vec<u8> {
        let mut s = seed | 1;
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s >> 24) as u8
            })
            .collect()
    }

    /// The one-shot `aes-gcm` crate with the same IV length (12 or 16 bytes).
    fn one_shot(key: &FileKey, iv: &[u8], data: &[u8]) -> (Vec<u8>, [u8; 16]) {
        use aes_gcm::aead::consts::{U12, U16 as N16};
        let mut buf = data.to_vec();
        macro_rules! run {
            ($aes:ty, $n:ty, $k:expr) => {{
                let c = AesGcm::<$aes, $n>::new_from_slice($k).expect("key length");
                let nonce = aes_gcm::Nonce::<$n>::try_from(iv).expect("nonce length");
                let tag = c
                    .encrypt_inout_detached(&nonce, b"", buf.as_mut_slice().into())
                    .expect("short");
                <[u8; 16]>::from(tag)
            }};
        }
        let tag = match (key, iv.len()) {
            (FileKey::Aes128(k), 12) => run!(A128, U12, k),
            (FileKey::Aes128(k), 16) => run!(A128, N16, k),
            (FileKey::Aes256(k), 12) => run!(A256, U12, k),
            (FileKey::Aes256(k), 16) => run!(A256, N16, k),
            _ => unreachable!("test IVs are 12 or 16 bytes"),
        };
        (buf, tag)
    }

    /// Runs `inner` over `data` in pieces of the given sizes (cycled), encrypting or decrypting.
    fn stream(
        mut inner: Inner,
        data: &[u8],
        pieces: &[usize],
        encrypt: bool,
    ) -> (Vec<u8>, [u8; 16]) {
        let mut buf = data.to_vec();
        let mut at = 0;
        let mut i = 0;
        while at < buf.len() {
            let n = pieces[i % pieces.len()].min(buf.len() - at);
            inner.apply(&mut buf[at..at + n], encrypt).expect("short");
            at += n;
            i += 1;
        }
        (buf, inner.tag())
    }

    fn keys() -> Vec<FileKey> {
        vec![
            FileKey::from_slice(&bytes(16, 3)).expect("16"),
            FileKey::from_slice(&bytes(32, 4)).expect("32"),
        ]
    }

    /// Both paths (the fused kernel where the CPU has it, and the portable one) against the one-shot
    /// crate, for every length around the 16-byte block and 128-byte group boundaries, with pieces
    /// that cut blocks anywhere; and decryption back.
    #[test]
    fn both_paths_equal_one_shot() {
        let sizes: Vec<usize> = (0..300)
            .chain([1023, 1024, 1025, 4096 + 7, 70_001])
            .collect();
        let piece_sets: [&[usize]; 5] =
            [&[usize::MAX], &[1], &[7, 16, 129], &[15, 1, 128, 3], &[300]];
        for key in keys() {
            for iv_len in [12, 16] {
                let iv = bytes(iv_len, iv_len as u64);
                for &n in &sizes {
                    let data = bytes(n, n as u64 + 11);
                    let (ct, tag) = one_shot(&key, &iv, &data);
                    for pieces in piece_sets {
                        for fused in [true, false] {
                            let make = || {
                                if fused {
                                    Inner::new(&key, &iv)
                                } else {
                                    Inner::portable(&key, &iv)
                                }
                                .expect("valid")
                            };
                            let (c2, t2) = stream(make(), &data, pieces, true);
                            assert!(
                                c2 == ct && t2 == tag,
                                "n={n} iv={iv_len} fused={fused} {pieces:?}"
                            );
                            let (p2, t3) = stream(make(), &ct, pieces, false);
                            assert!(p2 == data && t3 == tag, "decrypt n={n} fused={fused}");
                        }
                    }
                }
            }
        }
    }

    /// IV lengths other than 12 (J0 through GHASH) agree between the two paths.
    #[test]
    fn odd_iv_lengths_agree() {
        for key in keys() {
            for iv_len in [1, 8, 15, 17, 32, 64, 100, MAX_IV_LEN] {
                let iv = bytes(iv_len, 99);
                let data = bytes(1000, 5);
                let a = stream(Inner::new(&key, &iv).expect("iv"), &data, &[33], true);
                let b = stream(
                    Inner::portable(&key, &iv).expect("iv"),
                    &data,
                    &[1000],
                    true,
                );
                assert!(a == b, "iv_len={iv_len}");
            }
        }
    }

    /// 16-byte IVs give GHASH-derived J0s with arbitrary counter values: both paths agree on them.
    /// (The wrap of the 32-bit counter itself is tested in `gcm_x86`, from a chosen counter.)
    #[test]
    fn derived_j0_counters_agree() {
        let key = FileKey::from_slice(&bytes(32, 8)).expect("32");
        for seed in 0..64 {
            let iv = bytes(16, seed);
            let data = bytes(2048, seed);
            let a = stream(Inner::new(&key, &iv).expect("iv"), &data, &[2048], true);
            let b = stream(
                Inner::portable(&key, &iv).expect("iv"),
                &data,
                &[2048],
                true,
            );
            assert!(a == b, "seed={seed}");
        }
    }

    #[test]
    fn bad_ivs_are_refused() {
        let key = FileKey::random_aes256();
        assert!(matches!(
            Inner::new(&key, &[]),
            Err(FileCryptoError::IvLength(0))
        ));
        assert!(matches!(
            Inner::new(&key, &[0; MAX_IV_LEN + 1]),
            Err(FileCryptoError::IvLength(_))
        ));
    }
}
