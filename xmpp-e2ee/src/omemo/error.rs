//! Typed errors of the OMEMO core.

/// What went wrong while handling OMEMO data. Errors caused by remote input never leave a session or a
/// device in a changed state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OmemoError {
    /// A protobuf structure (or the legacy framing around it) could not be decoded.
    #[error("malformed protobuf: {0}")]
    MalformedProtobuf(&'static str),
    /// A public key has the wrong length, prefix or is not a valid curve point.
    #[error("invalid public key: {0}")]
    InvalidKey(&'static str),
    /// The signature on a bundle's signed prekey does not verify.
    #[error("the signed prekey signature does not verify")]
    BadSignature,
    /// The bundle carries no one-time prekey (OMEMO requires one for X3DH).
    #[error("the bundle has no one-time prekey")]
    NoPreKey,
    /// A key exchange names a one-time prekey this device does not have (used already or never existed).
    #[error("unknown one-time prekey id {0}")]
    UnknownPreKey(u32),
    /// A key exchange names a signed prekey this device does not have.
    #[error("unknown signed prekey id {0}")]
    UnknownSignedPreKey(u32),
    /// A key exchange does not belong to this session.
    #[error("the key exchange does not match this session")]
    KeyExchangeMismatch,
    /// The message authentication code does not verify (tampered or wrong session).
    #[error("message authentication failed")]
    BadMac,
    /// The message was already decrypted (its key is gone).
    #[error("message already received (replay), chain index {0}")]
    Replay(u32),
    /// The message would require skipping more message keys than allowed.
    #[error("too many skipped messages ({0})")]
    TooManySkipped(u64),
    /// The authenticated ciphertext decrypted to garbage (bad padding or AEAD tag).
    #[error("decryption failed: {0}")]
    DecryptionFailed(&'static str),
    /// The transported key material has the wrong length for the profile.
    #[error("invalid key material length {0}")]
    InvalidKeyMaterial(usize),
    /// Stored state (see [`super::Session::to_bytes`], [`super::DeviceKeys::to_bytes`]) is corrupt or of
    /// an unknown version.
    #[error("corrupt stored state: {0}")]
    CorruptState(&'static str),
    /// The session cannot send yet (should not happen with sessions built by this crate).
    #[error("the session has no sending chain")]
    NoSendingChain,
}
