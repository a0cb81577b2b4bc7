//! Trust in remote devices, fingerprints, and what this device remembers about each remote device.
//!
//! XEP-0384 forbids sending data to a device before its identity key is trusted. Two policies are
//! offered ([`TrustPolicy`]): *blind trust before verification* (BTBV, as Conversations does: new keys
//! of a contact are trusted until one of that contact's keys has been verified manually, after which
//! new keys wait for a decision) and *manual* (every new key waits for a decision). An application can
//! also decide itself with a callback ([`TrustDecider`]).

use std::fmt;

use super::error::OmemoError;
use super::keys::identity_to_curve;
use super::profile::Profile;
use super::proto::{put_bytes, put_u32, Fields};
use super::Result;

/// How far a remote device's identity key is trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TrustLevel {
    /// No decision yet: messages from it are decrypted (and flagged), none are encrypted for it.
    Undecided,
    /// Trusted without verification (blind trust before verification).
    BlindTrusted,
    /// Verified by the user (fingerprint compared).
    Verified,
    /// Refused by the user: nothing is encrypted for it.
    Distrusted,
}

impl TrustLevel {
    /// Whether content may be encrypted for a device of this level.
    pub fn may_encrypt(self) -> bool {
        matches!(self, TrustLevel::BlindTrusted | TrustLevel::Verified)
    }

    fn code(self) -> u32 {
        match self {
            TrustLevel::Undecided => 0,
            TrustLevel::BlindTrusted => 1,
            TrustLevel::Verified => 2,
            TrustLevel::Distrusted => 3,
        }
    }

    fn from_code(code: u32) -> Result<Self> {
        Ok(match code {
            0 => TrustLevel::Undecided,
            1 => TrustLevel::BlindTrusted,
            2 => TrustLevel::Verified,
            3 => TrustLevel::Distrusted,
            _ => return Err(OmemoError::CorruptState("unknown trust level")),
        })
    }
}

/// What happens when an identity key is seen for the first time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TrustPolicy {
    /// Blind trust before verification: trusted, unless the same account already has a verified key,
    /// in which case the new key is [`TrustLevel::Undecided`].
    #[default]
    BlindTrustBeforeVerification,
    /// Every new key is [`TrustLevel::Undecided`] until the application decides.
    Manual,
}

/// An application's decision on a newly seen identity key. Returning `None` applies the
/// [`TrustPolicy`].
pub trait TrustDecider: Send + Sync {
    /// Decides the trust of `jid`'s device `device_id` whose identity key has `fingerprint`
    /// (see [`fingerprint`]).
    fn decide(
        &self,
        profile: Profile,
        jid: &str,
        device_id: u32,
        fingerprint: &str,
    ) -> Option<TrustLevel>;
}

impl<F> TrustDecider for F
where
    F: Fn(Profile, &str, u32, &str) -> Option<TrustLevel> + Send + Sync,
{
    fn decide(
        &self,
        profile: Profile,
        jid: &str,
        device_id: u32,
        fingerprint: &str,
    ) -> Option<TrustLevel> {
        self(profile, jid, device_id, fingerprint)
    }
}

/// The fingerprint of an identity key as XEP-0384 recommends it and clients display it: the
/// Curve25519 form of the key in lowercase hex, in 8 groups of 8 characters separated by spaces. The
/// same identity gives the same fingerprint in both profiles.
pub fn fingerprint(profile: Profile, identity_key: &[u8]) -> Result<String> {
    let curve = identity_to_curve(profile, identity_key)?;
    let hex: String = curve.iter().map(|b| format!("{b:02x}")).collect();
    let groups: Vec<&str> = (0..8).map(|i| &hex[i * 8..i * 8 + 8]).collect();
    Ok(groups.join(" "))
}

/// What this device remembers about one remote device (in one profile).
#[derive(Clone, PartialEq, Eq)]
pub struct DeviceRecord {
    /// The device's identity key in the profile's wire form, once known (from its bundle or its
    /// first key exchange).
    pub identity_key: Option<Vec<u8>>,
    /// The trust decision on that key.
    pub trust: TrustLevel,
    /// Whether the device is on its account's latest device list. Inactive devices get nothing.
    pub active: bool,
    /// OMEMO:2 label, kept only when its signature verified against the identity key.
    pub label: Option<String>,
    /// The label's signature as published, verified once the identity key is known.
    pub label_signature: Option<Vec<u8>>,
    /// Messages encrypted for this device since the last one received from it. Past the stale limit
    /// the device is skipped when encrypting (it keeps decrypting).
    pub unanswered: u32,
    /// Unix time (seconds) of the last message received from the device, if any.
    pub last_received: Option<i64>,
    /// The device's ratchet key for which a heartbeat was last sent (XEP-0384: one heartbeat per
    /// ratchet key once its counter reaches 53).
    pub heartbeat_key: Option<Vec<u8>>,
}

impl fmt::Debug for DeviceRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceRecord")
            .field("identity_known", &self.identity_key.is_some())
            .field("trust", &self.trust)
            .field("active", &self.active)
            .field("label", &self.label)
            .field("unanswered", &self.unanswered)
            .field("last_received", &self.last_received)
            .finish()
    }
}

impl Default for DeviceRecord {
    fn default() -> Self {
        DeviceRecord {
            identity_key: None,
            trust: TrustLevel::Undecided,
            active: true,
            label: None,
            label_signature: None,
            unanswered: 0,
            last_received: None,
            heartbeat_key: None,
        }
    }
}

/// Version tag of the stored record format.
const RECORD_FORMAT: u32 = 1;

impl DeviceRecord {
    /// The stored form (not secret: public keys and bookkeeping).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        put_u32(&mut out, 15, RECORD_FORMAT);
        if let Some(ik) = &self.identity_key {
            put_bytes(&mut out, 1, ik);
        }
        put_u32(&mut out, 2, self.trust.code());
        put_u32(&mut out, 3, u32::from(self.active));
        if let Some(label) = &self.label {
            put_bytes(&mut out, 4, label.as_bytes());
        }
        if let Some(sig) = &self.label_signature {
            put_bytes(&mut out, 5, sig);
        }
        put_u32(&mut out, 6, self.unanswered);
        if let Some(t) = self.last_received {
            // Two's complement halves: seconds fit in 64 bits, fields here are 32-bit varints.
            let t = t as u64;
            put_u32(&mut out, 7, (t >> 32) as u32);
            put_u32(&mut out, 8, t as u32);
        }
        if let Some(k) = &self.heartbeat_key {
            put_bytes(&mut out, 9, k);
        }
        out
    }

    /// Reads a stored record; [`OmemoError::CorruptState`] when it is not one.
    pub fn from_bytes(data: &[u8]) -> Result<Self> {
        let corrupt = |_| OmemoError::CorruptState("device record");
        let f = Fields::parse(data).map_err(corrupt)?;
        if f.u32(15, "version").map_err(corrupt)? != RECORD_FORMAT {
            return Err(OmemoError::CorruptState("device record version"));
        }
        let opt_u32 = |field| match f.u32(field, "field") {
            Ok(v) => Ok(Some(v)),
            Err(_) if f.opt_bytes(field).map_err(corrupt)?.is_none() => Ok(None),
            Err(e) => Err(corrupt(e)),
        };
        let label = match f.opt_bytes(4).map_err(corrupt)? {
            Some(b) => Some(
                String::from_utf8(b.to_vec())
                    .map_err(|_| OmemoError::CorruptState("device label"))?,
            ),
            None => None,
        };
        let last_received = match (opt_u32(7)?, opt_u32(8)?) {
            (Some(hi), Some(lo)) => Some(((u64::from(hi) << 32) | u64::from(lo)) as i64),
            _ => None,
        };
        Ok(DeviceRecord {
            identity_key: f.opt_bytes(1).map_err(corrupt)?.map(<[u8]>::to_vec),
            trust: TrustLevel::from_code(f.u32(2, "trust").map_err(corrupt)?)?,
            active: f.u32(3, "active").map_err(corrupt)? != 0,
            label,
            label_signature: f.opt_bytes(5).map_err(corrupt)?.map(<[u8]>::to_vec),
            unanswered: opt_u32(6)?.unwrap_or(0),
            last_received,
            heartbeat_key: f.opt_bytes(9).map_err(corrupt)?.map(<[u8]>::to_vec),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::omemo::DeviceKeys;

    #[test]
    fn fingerprints_agree_across_profiles_and_are_grouped() {
        let keys = DeviceKeys::generate(1);
        let a = fingerprint(Profile::Omemo2, &keys.identity.wire_public(Profile::Omemo2));
        let b = fingerprint(Profile::Legacy, &keys.identity.wire_public(Profile::Legacy));
        let a = a.expect("omemo2 fingerprint");
        assert_eq!(Ok(a.clone()), b);
        assert_eq!(a.len(), 8 * 8 + 7);
        assert_eq!(a.split(' ').count(), 8);
        assert!(a
            .chars()
            .all(|c| c == ' ' || c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert!(fingerprint(Profile::Legacy, &[5, 1, 2]).is_err());
    }

    #[test]
    fn records_round_trip() {
        let rec = DeviceRecord {
            identity_key: Some(vec![1, 2, 3]),
            trust: TrustLevel::Verified,
            active: false,
            label: Some("Phone é".to_owned()),
            label_signature: Some(vec![9; 64]),
            unanswered: 17,
            last_received: Some(-5),
            heartbeat_key: Some(vec![5; 33]),
        };
        assert_eq!(DeviceRecord::from_bytes(&rec.to_bytes()), Ok(rec));
        let plain = DeviceRecord::default();
        assert_eq!(DeviceRecord::from_bytes(&plain.to_bytes()), Ok(plain));
        assert!(DeviceRecord::from_bytes(b"\xff\xff").is_err());
        assert!(DeviceRecord::from_bytes(&[]).is_err());
    }
}
