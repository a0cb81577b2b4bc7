//! Identity keys, prekeys and bundles.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use curve25519_dalek::edwards::CompressedEdwardsY;
use curve25519_dalek::montgomery::MontgomeryPoint;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use sha2::{Digest, Sha512};
use x25519_dalek::{PublicKey, StaticSecret};

use super::crypto::random;
use super::error::OmemoError;
use super::profile::{Profile, DJB_TYPE};
use super::proto::{put_bytes, put_u32, Fields};
use super::Result;

/// A device's long-term identity: an Ed25519 seed, from which the X25519 key used in X3DH is derived
/// (`clamp(SHA-512(seed)[..32])`, the same scalar Ed25519 signs with).
#[derive(Clone)]
pub struct IdentityKeyPair {
    seed: [u8; 32],
    signing: SigningKey,
    dh: StaticSecret,
}

impl fmt::Debug for IdentityKeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdentityKeyPair")
            .field("ed25519_public", &self.ed25519_public())
            .finish_non_exhaustive()
    }
}

impl PartialEq for IdentityKeyPair {
    fn eq(&self, other: &Self) -> bool {
        self.seed == other.seed
    }
}

impl IdentityKeyPair {
    /// A fresh random identity.
    pub fn generate() -> Self {
        Self::from_seed(random())
    }

    /// The identity of a stored Ed25519 seed.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        let digest = Sha512::digest(seed);
        let mut scalar = [0u8; 32];
        scalar.copy_from_slice(&digest[..32]);
        // x25519-dalek clamps on use, which gives clamp(SHA-512(seed)[..32]).
        IdentityKeyPair {
            seed,
            signing: SigningKey::from_bytes(&seed),
            dh: StaticSecret::from(scalar),
        }
    }

    /// The seed, for persisting the identity. Secret.
    pub fn seed(&self) -> &[u8; 32] {
        &self.seed
    }

    /// The Ed25519 public key (OMEMO:2 wire form of the identity key).
    pub fn ed25519_public(&self) -> [u8; 32] {
        self.signing.verifying_key().to_bytes()
    }

    /// The Curve25519 (Montgomery) public key.
    pub fn curve25519_public(&self) -> [u8; 32] {
        PublicKey::from(&self.dh).to_bytes()
    }

    /// The identity key as the profile puts it on the wire: OMEMO:2 the Ed25519 key, legacy
    /// `0x05 || Curve25519 key`.
    pub fn wire_public(&self, profile: Profile) -> Vec<u8> {
        match profile {
            Profile::Omemo2 => self.ed25519_public().to_vec(),
            Profile::Legacy => djb_encode(&self.curve25519_public()),
        }
    }

    pub(crate) fn dh(&self, their: &[u8; 32]) -> Result<[u8; 32]> {
        dh(&self.dh, their)
    }

    /// Signs a signed prekey's public key as the profile requires. Legacy: the signature covers
    /// `0x05 || key` and carries the Ed25519 sign bit in the top bit of byte 63.
    fn sign_prekey(&self, profile: Profile, spk_public: &[u8; 32]) -> [u8; 64] {
        match profile {
            Profile::Omemo2 => self.signing.sign(spk_public).to_bytes(),
            Profile::Legacy => {
                let mut sig = self.signing.sign(&djb_encode(spk_public)).to_bytes();
                sig[63] |= self.ed25519_public()[31] & 0x80;
                sig
            }
        }
    }
}

/// X25519 with a check against low-order (non-contributory) peer keys.
pub(crate) fn dh(secret: &StaticSecret, their: &[u8; 32]) -> Result<[u8; 32]> {
    let shared = secret.diffie_hellman(&PublicKey::from(*their));
    if !shared.was_contributory() {
        return Err(OmemoError::InvalidKey("low-order Curve25519 point"));
    }
    Ok(shared.to_bytes())
}

pub(crate) fn djb_encode(key: &[u8; 32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(33);
    out.push(DJB_TYPE);
    out.extend_from_slice(key);
    out
}

/// Decodes a Curve25519 public key from its wire form (OMEMO:2 32 bytes, legacy `0x05` + 32 bytes).
pub(crate) fn decode_curve(profile: Profile, bytes: &[u8]) -> Result<[u8; 32]> {
    let raw = match profile {
        Profile::Omemo2 => bytes,
        Profile::Legacy => match bytes.split_first() {
            Some((&DJB_TYPE, rest)) => rest,
            _ => return Err(OmemoError::InvalidKey("missing 0x05 key type")),
        },
    };
    raw.try_into()
        .map_err(|_| OmemoError::InvalidKey("Curve25519 key is not 32 bytes"))
}

/// Converts a peer's identity key from its wire form to the Curve25519 key used for X3DH.
pub(crate) fn identity_to_curve(profile: Profile, bytes: &[u8]) -> Result<[u8; 32]> {
    match profile {
        Profile::Omemo2 => {
            let ed: [u8; 32] = bytes
                .try_into()
                .map_err(|_| OmemoError::InvalidKey("Ed25519 key is not 32 bytes"))?;
            let point = CompressedEdwardsY(ed)
                .decompress()
                .ok_or(OmemoError::InvalidKey("not an Ed25519 point"))?;
            Ok(point.to_montgomery().to_bytes())
        }
        Profile::Legacy => decode_curve(profile, bytes),
    }
}

/// Verifies the signature on a bundle's signed prekey.
fn verify_spk(profile: Profile, identity: &[u8], spk: &[u8], sig: &[u8]) -> Result<()> {
    let mut sig: [u8; 64] = sig.try_into().map_err(|_| OmemoError::BadSignature)?;
    let ed: [u8; 32] = match profile {
        Profile::Omemo2 => identity
            .try_into()
            .map_err(|_| OmemoError::InvalidKey("Ed25519 key is not 32 bytes"))?,
        Profile::Legacy => {
            let mont = decode_curve(profile, identity)?;
            let sign = sig[63] >> 7;
            sig[63] &= 0x7f;
            MontgomeryPoint(mont)
                .to_edwards(sign)
                .ok_or(OmemoError::InvalidKey("Curve25519 key has no Ed25519 form"))?
                .compress()
                .to_bytes()
        }
    };
    let key = VerifyingKey::from_bytes(&ed)
        .map_err(|_| OmemoError::InvalidKey("not an Ed25519 point"))?;
    key.verify(spk, &Signature::from_bytes(&sig))
        .map_err(|_| OmemoError::BadSignature)
}

/// A signed prekey: an X25519 key pair with its id and, when known, its creation time (which drives
/// the periodic rotation, see [`DeviceKeys::signed_prekey_rotation_due`]). Its signature is made per
/// profile when a bundle is built.
#[derive(Clone)]
pub struct SignedPreKey {
    /// The id published in the bundle.
    pub id: u32,
    secret: StaticSecret,
    created: Option<u64>,
}

impl fmt::Debug for SignedPreKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignedPreKey")
            .field("id", &self.id)
            .field("public", &self.public())
            .field("created", &self.created)
            .finish_non_exhaustive()
    }
}

/// The current time in seconds since the Unix epoch (0 if the system clock is before 1970).
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl SignedPreKey {
    /// A fresh signed prekey with the given id, created now (system clock).
    pub fn generate(id: u32) -> Self {
        Self::generate_at(id, unix_now())
    }

    /// A fresh signed prekey with the given id, created at `created` (seconds since the Unix epoch).
    pub fn generate_at(id: u32, created: u64) -> Self {
        Self::from_secret(id, random()).with_created(created)
    }

    /// A stored signed prekey. Its creation time is unknown until [`SignedPreKey::with_created`]
    /// sets it.
    pub fn from_secret(id: u32, secret: [u8; 32]) -> Self {
        SignedPreKey {
            id,
            secret: StaticSecret::from(secret),
            created: None,
        }
    }

    /// The same key with its creation time (seconds since the Unix epoch).
    pub fn with_created(mut self, created: u64) -> Self {
        self.created = Some(created);
        self
    }

    /// When the key was created (seconds since the Unix epoch); `None` for keys stored before
    /// creation times were recorded.
    pub fn created(&self) -> Option<u64> {
        self.created
    }

    /// The secret, for persisting. Secret.
    pub fn secret(&self) -> [u8; 32] {
        self.secret.to_bytes()
    }

    /// The X25519 public key.
    pub fn public(&self) -> [u8; 32] {
        PublicKey::from(&self.secret).to_bytes()
    }
}

/// Largest signed prekey id: XEP-0384 ids are positive signed 32-bit integers.
const MAX_SIGNED_PREKEY_ID: u32 = 0x7fff_ffff;

/// A one-time prekey as published in a bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreKeyPublic {
    /// Its id.
    pub id: u32,
    /// The key in the profile's wire form (OMEMO:2 32 bytes, legacy `0x05` + 32 bytes).
    pub key: Vec<u8>,
}

/// A device's bundle, with every key in the wire form of its profile (the bytes that are base64-encoded
/// in the XML).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bundle {
    /// The profile the keys are encoded for.
    pub profile: Profile,
    /// Identity key (OMEMO:2: Ed25519, 32 bytes; legacy: `0x05` + Curve25519).
    pub identity_key: Vec<u8>,
    /// Id of the signed prekey.
    pub signed_prekey_id: u32,
    /// The signed prekey.
    pub signed_prekey: Vec<u8>,
    /// Its signature by the identity key (64 bytes).
    pub signed_prekey_signature: Vec<u8>,
    /// One-time prekeys.
    pub prekeys: Vec<PreKeyPublic>,
}

impl Bundle {
    /// Checks the keys' encodings and the signed prekey's signature.
    pub fn verify(&self) -> Result<()> {
        identity_to_curve(self.profile, &self.identity_key)?;
        decode_curve(self.profile, &self.signed_prekey)?;
        verify_spk(
            self.profile,
            &self.identity_key,
            &self.signed_prekey,
            &self.signed_prekey_signature,
        )
    }
}

/// Everything secret a device owns: identity, signed prekey(s) and one-time prekeys.
#[derive(Clone)]
pub struct DeviceKeys {
    /// The identity key pair.
    pub identity: IdentityKeyPair,
    /// The current signed prekey.
    pub signed_prekey: SignedPreKey,
    /// The previous signed prekey, kept after a rotation so late key exchanges still work.
    pub old_signed_prekey: Option<SignedPreKey>,
    pub(crate) prekeys: BTreeMap<u32, StaticSecret>,
    pub(crate) next_prekey_id: u32,
}

impl fmt::Debug for DeviceKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceKeys")
            .field("identity", &self.identity)
            .field("signed_prekey", &self.signed_prekey)
            .field("prekeys", &self.prekeys.len())
            .finish_non_exhaustive()
    }
}

impl DeviceKeys {
    /// A fresh device with `prekeys` one-time prekeys (XEP-0384 recommends 100), its signed prekey
    /// created now (system clock).
    pub fn generate(prekeys: u32) -> Self {
        Self::generate_at(prekeys, unix_now())
    }

    /// A fresh device with `prekeys` one-time prekeys, its signed prekey created at `now` (seconds
    /// since the Unix epoch).
    pub fn generate_at(prekeys: u32, now: u64) -> Self {
        let mut keys = DeviceKeys {
            identity: IdentityKeyPair::generate(),
            signed_prekey: SignedPreKey::generate_at(1, now),
            old_signed_prekey: None,
            prekeys: BTreeMap::new(),
            next_prekey_id: 1,
        };
        keys.refill_prekeys(prekeys as usize);
        keys
    }

    /// Number of one-time prekeys left.
    pub fn prekey_count(&self) -> usize {
        self.prekeys.len()
    }

    /// Generates one-time prekeys until `target` exist; returns how many were added.
    pub fn refill_prekeys(&mut self, target: usize) -> usize {
        let mut added = 0;
        while self.prekeys.len() < target {
            let id = self.next_prekey_id;
            self.next_prekey_id = self.next_prekey_id.wrapping_add(1).max(1);
            if self.prekeys.contains_key(&id) {
                continue;
            }
            self.prekeys.insert(id, StaticSecret::from(random::<32>()));
            added += 1;
        }
        added
    }

    /// Replaces the signed prekey with a fresh one created now (system clock), keeping the current one
    /// as the old one (a previous old one is dropped).
    pub fn rotate_signed_prekey(&mut self) {
        self.rotate_signed_prekey_at(unix_now());
    }

    /// Replaces the signed prekey with a fresh one created at `now` (seconds since the Unix epoch),
    /// keeping the current one as the old one (a previous old one is dropped). The new id follows
    /// the current one, wrapping within 1..=2^31-1 as XEP-0384 requires.
    pub fn rotate_signed_prekey_at(&mut self, now: u64) {
        let id = match self.signed_prekey.id {
            id if id >= MAX_SIGNED_PREKEY_ID => 1,
            id => id + 1,
        };
        let old = std::mem::replace(&mut self.signed_prekey, SignedPreKey::generate_at(id, now));
        self.old_signed_prekey = Some(old);
    }

    /// Whether the signed prekey is due for rotation at `now` (seconds since the Unix epoch) when
    /// it is replaced every `period`: its age has reached `period`, or its creation time is unknown
    /// (keys stored before creation times were recorded: their age may be anything, so they are
    /// replaced at the first check), or it lies more than `period` in the future (the clock was
    /// wrong when the key was made). A creation time slightly in the future counts as age zero.
    pub fn signed_prekey_rotation_due(&self, period: Duration, now: u64) -> bool {
        match self.signed_prekey.created {
            None => true,
            Some(created) if created > now => created - now > period.as_secs(),
            Some(created) => now - created >= period.as_secs(),
        }
    }

    /// Drops the old signed prekey once `lifetime` has passed since the rotation that retired it
    /// (the creation time of the current signed prekey); returns whether it was dropped. A key
    /// exchange naming it fails afterwards with [`OmemoError::UnknownSignedPreKey`]. When the
    /// current key's creation time is unknown, the old key is kept.
    pub fn expire_old_signed_prekey(&mut self, lifetime: Duration, now: u64) -> bool {
        let Some(rotated) = self.signed_prekey.created else {
            return false;
        };
        if self.old_signed_prekey.is_some() && now.saturating_sub(rotated) >= lifetime.as_secs() {
            self.old_signed_prekey = None;
            return true;
        }
        false
    }

    /// The bundle to publish for `profile`.
    pub fn bundle(&self, profile: Profile) -> Bundle {
        let spk = self.signed_prekey.public();
        let encode = |k: &[u8; 32]| match profile {
            Profile::Omemo2 => k.to_vec(),
            Profile::Legacy => djb_encode(k),
        };
        Bundle {
            profile,
            identity_key: self.identity.wire_public(profile),
            signed_prekey_id: self.signed_prekey.id,
            signed_prekey: encode(&spk),
            signed_prekey_signature: self.identity.sign_prekey(profile, &spk).to_vec(),
            prekeys: self
                .prekeys
                .iter()
                .map(|(id, s)| PreKeyPublic {
                    id: *id,
                    key: encode(PublicKey::from(s).as_bytes()),
                })
                .collect(),
        }
    }

    pub(crate) fn signed_prekey_by_id(&self, id: u32) -> Result<&SignedPreKey> {
        if self.signed_prekey.id == id {
            return Ok(&self.signed_prekey);
        }
        self.old_signed_prekey
            .as_ref()
            .filter(|k| k.id == id)
            .ok_or(OmemoError::UnknownSignedPreKey(id))
    }
}

/// Version tag of the stored device format. Signed prekeys gained an optional creation time (field
/// 3 of their record) without a new version: older readers skip it, and records without it load with
/// an unknown creation time.
const DEVICE_FORMAT: u32 = 1;

impl DeviceKeys {
    /// Serialises all keys (secret!) for a key store.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        put_u32(&mut out, 15, DEVICE_FORMAT);
        put_bytes(&mut out, 1, &self.identity.seed);
        let spk = |k: &SignedPreKey| {
            let mut v = Vec::new();
            put_u32(&mut v, 1, k.id);
            put_bytes(&mut v, 2, &k.secret());
            if let Some(created) = k.created {
                // 8 bytes big-endian; absent in keys stored before creation times were recorded.
                put_bytes(&mut v, 3, &created.to_be_bytes());
            }
            v
        };
        put_bytes(&mut out, 2, &spk(&self.signed_prekey));
        if let Some(old) = &self.old_signed_prekey {
            put_bytes(&mut out, 3, &spk(old));
        }
        let mut pks = Vec::with_capacity(self.prekeys.len() * 36);
        for (id, s) in &self.prekeys {
            pks.extend_from_slice(&id.to_be_bytes());
            pks.extend_from_slice(&s.to_bytes());
        }
        put_bytes(&mut out, 4, &pks);
        put_u32(&mut out, 5, self.next_prekey_id);
        out
    }

    /// Restores keys stored with [`DeviceKeys::to_bytes`]. Signed prekeys stored before creation
    /// times were recorded load with an unknown one ([`SignedPreKey::created`] is `None`): the
    /// manager rotates such a key at its first check, since its age cannot be known.
    pub fn from_bytes(data: &[u8]) -> Result<Self> {
        let corrupt = |_| OmemoError::CorruptState("device keys");
        let key32 = |b: &[u8]| -> Result<[u8; 32]> {
            b.try_into()
                .map_err(|_| OmemoError::CorruptState("key is not 32 bytes"))
        };
        let f = Fields::parse(data).map_err(corrupt)?;
        if f.u32(15, "format").map_err(corrupt)? != DEVICE_FORMAT {
            return Err(OmemoError::CorruptState("unknown device format"));
        }
        let spk = |raw: &[u8]| -> Result<SignedPreKey> {
            let k = Fields::parse(raw).map_err(corrupt)?;
            let mut key = SignedPreKey::from_secret(
                k.u32(1, "id").map_err(corrupt)?,
                key32(k.bytes(2, "secret").map_err(corrupt)?)?,
            );
            if let Some(created) = k.opt_bytes(3).map_err(corrupt)? {
                let created: [u8; 8] = created
                    .try_into()
                    .map_err(|_| OmemoError::CorruptState("signed prekey creation time"))?;
                key = key.with_created(u64::from_be_bytes(created));
            }
            Ok(key)
        };
        let raw_pks = f.bytes(4, "prekeys").map_err(corrupt)?;
        if raw_pks.len() % 36 != 0 {
            return Err(OmemoError::CorruptState("prekeys"));
        }
        let mut prekeys = BTreeMap::new();
        for rec in raw_pks.chunks_exact(36) {
            let mut id = [0u8; 4];
            id.copy_from_slice(&rec[..4]);
            prekeys.insert(
                u32::from_be_bytes(id),
                StaticSecret::from(key32(&rec[4..])?),
            );
        }
        Ok(DeviceKeys {
            identity: IdentityKeyPair::from_seed(key32(f.bytes(1, "identity").map_err(corrupt)?)?),
            signed_prekey: spk(f.bytes(2, "signed prekey").map_err(corrupt)?)?,
            old_signed_prekey: f.opt_bytes(3).map_err(corrupt)?.map(spk).transpose()?,
            prekeys,
            next_prekey_id: f.u32(5, "next prekey id").map_err(corrupt)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curve_key_is_the_montgomery_form_of_the_ed25519_key() {
        let id = IdentityKeyPair::generate();
        let mont = identity_to_curve(Profile::Omemo2, &id.ed25519_public());
        assert_eq!(mont, Ok(id.curve25519_public()));
    }

    #[test]
    fn bundles_verify_in_both_profiles_and_tampering_is_detected() {
        for _ in 0..8 {
            let keys = DeviceKeys::generate(3);
            for p in [Profile::Omemo2, Profile::Legacy] {
                let b = keys.bundle(p);
                assert_eq!(b.verify(), Ok(()));
                assert_eq!(b.prekeys.len(), 3);
                let mut bad = b.clone();
                bad.signed_prekey_signature[0] ^= 1;
                assert_eq!(bad.verify(), Err(OmemoError::BadSignature));
                let mut bad = b.clone();
                bad.signed_prekey_signature.pop();
                assert_eq!(bad.verify(), Err(OmemoError::BadSignature));
            }
        }
    }

    #[test]
    fn refill_and_rotation() {
        let mut keys = DeviceKeys::generate(2);
        keys.prekeys.remove(&1);
        assert_eq!(keys.refill_prekeys(5), 4);
        assert_eq!(keys.prekey_count(), 5);
        let first = keys.signed_prekey.id;
        keys.rotate_signed_prekey();
        assert!(keys.signed_prekey_by_id(first).is_ok());
        assert!(keys.signed_prekey_by_id(keys.signed_prekey.id).is_ok());
        assert_eq!(
            keys.signed_prekey_by_id(99).err(),
            Some(OmemoError::UnknownSignedPreKey(99))
        );
    }
}
