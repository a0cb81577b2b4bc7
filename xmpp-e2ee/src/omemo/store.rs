//! Persistence of OMEMO state: the [`OmemoStore`] trait and an in-memory implementation.
//!
//! Stores keep the opaque serialisations of [`DeviceKeys::to_bytes`], [`Session::to_bytes`] and
//! [`DeviceRecord::to_bytes`], so any backend (memory, SQLite, files) stores byte strings. A session must be stored after every
//! successful [`Session::encrypt`] or [`Session::decrypt`], and the device keys after
//! [`DeviceKeys::accept`] (a one-time prekey is gone) and after refills and rotations.

use std::collections::BTreeMap;

use super::error::OmemoError;
use super::keys::DeviceKeys;
use super::profile::Profile;
use super::session::Session;
use super::trust::DeviceRecord;

/// A remote device in one namespace.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceAddress {
    /// The namespace the session speaks.
    pub profile: Profile,
    /// Bare JID of the account.
    pub jid: String,
    /// Device id.
    pub device_id: u32,
}

impl DeviceAddress {
    /// A device address.
    pub fn new(profile: Profile, jid: impl Into<String>, device_id: u32) -> Self {
        DeviceAddress {
            profile,
            jid: jid.into(),
            device_id,
        }
    }
}

/// Storage of one account's OMEMO state (own device keys and sessions).
pub trait OmemoStore {
    /// The backend's error type.
    type Error: std::error::Error + Send + Sync + 'static;

    /// The own device id and keys, if the device was set up.
    fn load_own_device(&self) -> Result<Option<(u32, DeviceKeys)>, Self::Error>;
    /// Saves the own device id and keys.
    fn store_own_device(&mut self, device_id: u32, keys: &DeviceKeys) -> Result<(), Self::Error>;
    /// The session with a remote device.
    fn load_session(&self, address: &DeviceAddress) -> Result<Option<Session>, Self::Error>;
    /// Saves the session with a remote device.
    fn store_session(
        &mut self,
        address: &DeviceAddress,
        session: &Session,
    ) -> Result<(), Self::Error>;
    /// Forgets the session with a remote device (broken session, removed device).
    fn delete_session(&mut self, address: &DeviceAddress) -> Result<(), Self::Error>;
    /// Device ids of `jid` with a stored session in `profile`, ascending.
    fn session_devices(&self, profile: Profile, jid: &str) -> Result<Vec<u32>, Self::Error>;
    /// What is known about a remote device (identity key, trust, activity).
    fn load_device(&self, address: &DeviceAddress) -> Result<Option<DeviceRecord>, Self::Error>;
    /// Saves what is known about a remote device.
    fn store_device(
        &mut self,
        address: &DeviceAddress,
        record: &DeviceRecord,
    ) -> Result<(), Self::Error>;
    /// Every known device of `jid` in `profile`, by ascending device id.
    fn devices(&self, profile: Profile, jid: &str)
        -> Result<Vec<(u32, DeviceRecord)>, Self::Error>;
}

/// An [`OmemoStore`] in memory. It keeps the serialised forms, so loading returns fresh copies just
/// like a persistent store would.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    own: Option<(u32, Vec<u8>)>,
    sessions: BTreeMap<DeviceAddress, Vec<u8>>,
    devices: BTreeMap<DeviceAddress, Vec<u8>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl OmemoStore for MemoryStore {
    type Error = OmemoError;

    fn load_own_device(&self) -> Result<Option<(u32, DeviceKeys)>, OmemoError> {
        self.own
            .as_ref()
            .map(|(id, bytes)| Ok((*id, DeviceKeys::from_bytes(bytes)?)))
            .transpose()
    }

    fn store_own_device(&mut self, device_id: u32, keys: &DeviceKeys) -> Result<(), OmemoError> {
        self.own = Some((device_id, keys.to_bytes()));
        Ok(())
    }

    fn load_session(&self, address: &DeviceAddress) -> Result<Option<Session>, OmemoError> {
        self.sessions
            .get(address)
            .map(|b| Session::from_bytes(b))
            .transpose()
    }

    fn store_session(
        &mut self,
        address: &DeviceAddress,
        session: &Session,
    ) -> Result<(), OmemoError> {
        self.sessions.insert(address.clone(), session.to_bytes());
        Ok(())
    }

    fn delete_session(&mut self, address: &DeviceAddress) -> Result<(), OmemoError> {
        self.sessions.remove(address);
        Ok(())
    }

    fn session_devices(&self, profile: Profile, jid: &str) -> Result<Vec<u32>, OmemoError> {
        Ok(self
            .sessions
            .keys()
            .filter(|a| a.profile == profile && a.jid == jid)
            .map(|a| a.device_id)
            .collect())
    }

    fn load_device(&self, address: &DeviceAddress) -> Result<Option<DeviceRecord>, OmemoError> {
        self.devices
            .get(address)
            .map(|b| DeviceRecord::from_bytes(b))
            .transpose()
    }

    fn store_device(
        &mut self,
        address: &DeviceAddress,
        record: &DeviceRecord,
    ) -> Result<(), OmemoError> {
        self.devices.insert(address.clone(), record.to_bytes());
        Ok(())
    }

    fn devices(&self, profile: Profile, jid: &str) -> Result<Vec<(u32, DeviceRecord)>, OmemoError> {
        self.devices
            .iter()
            .filter(|(a, _)| a.profile == profile && a.jid == jid)
            .map(|(a, b)| Ok((a.device_id, DeviceRecord::from_bytes(b)?)))
            .collect()
    }
}
