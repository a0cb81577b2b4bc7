//! The two OMEMO profiles and the parameters that distinguish them.

/// Namespace of OMEMO:2 (XEP-0384 0.9).
pub const NS_OMEMO2: &str = "urn:xmpp:omemo:2";
/// Namespace of legacy OMEMO (XEP-0384 0.3, Conversations/Dino).
pub const NS_OMEMO_LEGACY: &str = "eu.siacs.conversations.axolotl";

/// Which OMEMO version a session or bundle speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Profile {
    /// `urn:xmpp:omemo:2`.
    Omemo2,
    /// `eu.siacs.conversations.axolotl`.
    Legacy,
}

impl Profile {
    /// The XML namespace of the profile.
    pub fn namespace(self) -> &'static str {
        match self {
            Profile::Omemo2 => NS_OMEMO2,
            Profile::Legacy => NS_OMEMO_LEGACY,
        }
    }

    /// The profile for an XML namespace.
    pub fn from_namespace(ns: &str) -> Option<Self> {
        match ns {
            NS_OMEMO2 => Some(Profile::Omemo2),
            NS_OMEMO_LEGACY => Some(Profile::Legacy),
            _ => None,
        }
    }

    pub(crate) fn x3dh_info(self) -> &'static [u8] {
        match self {
            Profile::Omemo2 => b"OMEMO X3DH",
            Profile::Legacy => b"WhisperText",
        }
    }

    pub(crate) fn root_info(self) -> &'static [u8] {
        match self {
            Profile::Omemo2 => b"OMEMO Root Chain",
            Profile::Legacy => b"WhisperRatchet",
        }
    }

    pub(crate) fn message_info(self) -> &'static [u8] {
        match self {
            Profile::Omemo2 => b"OMEMO Message Key Material",
            Profile::Legacy => b"WhisperMessageKeys",
        }
    }

    /// Length of the truncated ratchet message MAC.
    pub(crate) fn mac_len(self) -> usize {
        match self {
            Profile::Omemo2 => 16,
            Profile::Legacy => 8,
        }
    }

    /// Length of an encoded identity key in the associated data.
    pub(crate) fn identity_len(self) -> usize {
        match self {
            Profile::Omemo2 => 32,
            Profile::Legacy => 33,
        }
    }
}

/// The version byte that precedes legacy (libsignal) messages.
pub(crate) const LEGACY_VERSION: u8 = 0x33;
/// The type byte that precedes Curve25519 public keys in legacy encodings.
pub(crate) const DJB_TYPE: u8 = 0x05;
