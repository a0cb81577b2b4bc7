//! The OMEMO session manager: the sans-IO layer between the ratchet core and the network.
//!
//! [`OmemoManager`] owns a store and this device's keys. It decides who gets a key (active, trusted,
//! not stale devices of every recipient and of the own account), builds sessions from bundles,
//! decrypts with replay and tamper checks, keeps trust and device records, and says what the network
//! side must do next as [`Action`]s (republish the bundle after a prekey was used, answer a key exchange
//! or a counter past 53 with an empty message, rebuild a session with a device that has none, refresh a
//! device list). [`super::OmemoClient`] is the async driver that performs them over a `Connection`.

use std::collections::VecDeque;
use std::time::Duration;

use super::error::OmemoError;
use super::keys::{Bundle, DeviceKeys};
use super::payload::{self, EncryptedPayload};
use super::profile::Profile;
use super::session::ratchet_header;
use super::store::{DeviceAddress, OmemoStore};
use super::trust::{fingerprint, DeviceRecord, TrustDecider, TrustLevel, TrustPolicy};
use super::xml::{DeviceList, Encrypted, MessageKey};

/// XEP-0384: the first message of a ratchet key with this counter or higher calls for a heartbeat.
pub const HEARTBEAT_COUNTER: u32 = 53;

/// Settings of an [`OmemoManager`].
#[derive(Debug, Clone)]
pub struct OmemoConfig {
    /// The namespaces this device speaks (both by default).
    pub profiles: Vec<Profile>,
    /// What happens to newly seen identity keys.
    pub trust_policy: TrustPolicy,
    /// OMEMO:2 device label (signed with the identity key when published).
    pub label: Option<String>,
    /// How many one-time prekeys the bundle offers (XEP-0384: at least 25; 100 is usual).
    pub prekeys: usize,
    /// A device that has received this many of our messages without sending one back is stale and
    /// gets no more keys until it speaks again. A live device answers at least every
    /// [`HEARTBEAT_COUNTER`] messages (heartbeats), so the default of 300 only catches dead devices.
    pub stale_after: u32,
    /// How long [`OmemoClient`](super::client::OmemoClient) reuses a fetched device list before
    /// fetching it again when encrypting. PEP notifications of device lists (see
    /// [`OmemoClient::handle_device_list_push`](super::client::OmemoClient::handle_device_list_push))
    /// and messages from unknown devices update a list sooner. The default, `Duration::ZERO`, fetches
    /// before every message: a longer time saves two round trips per message but, unless the
    /// application receives the notifications (it announces `+notify` in XEP-0115 caps, or subscribes
    /// to its contacts' device-list nodes), a device added meanwhile gets no key until the list is
    /// fetched again.
    pub device_list_ttl: Duration,
    /// How often the signed prekey is replaced by a fresh one (a bundle republication is queued
    /// then); `None` never rotates (the application may still call
    /// [`OmemoManager::rotate_signed_prekey`]). XEP-0384 asks for one week to one month; the default
    /// is one week, as in python-omemo. The manager checks when it is opened, on every encryption,
    /// decryption and bundle, and on [`OmemoManager::rotate_signed_prekey_if_due`].
    pub signed_prekey_rotation: Option<Duration>,
    /// How long the previous signed prekey stays accepted after a rotation, for key exchanges made
    /// against the bundle published before it (delayed and offline messages); then it is dropped.
    /// XEP-0384 asks for another rotation period, the default (one week). Only one previous key is
    /// kept: a rotation drops the one before, so a lifetime longer than the rotation period acts as
    /// the period.
    pub old_signed_prekey_lifetime: Duration,
}

/// One week, the default [`OmemoConfig::signed_prekey_rotation`] and
/// [`OmemoConfig::old_signed_prekey_lifetime`].
pub const SIGNED_PREKEY_ROTATION: Duration = Duration::from_secs(7 * 24 * 60 * 60);

impl Default for OmemoConfig {
    fn default() -> Self {
        OmemoConfig {
            profiles: vec![Profile::Omemo2, Profile::Legacy],
            trust_policy: TrustPolicy::default(),
            label: None,
            prekeys: 100,
            stale_after: 300,
            device_list_ttl: Duration::ZERO,
            signed_prekey_rotation: Some(SIGNED_PREKEY_ROTATION),
            old_signed_prekey_lifetime: SIGNED_PREKEY_ROTATION,
        }
    }
}

/// Something the network side must do for the protocol to stay healthy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// A one-time prekey was used (and replaced) or the signed prekey was rotated: republish this
    /// device's bundle in the profile.
    RepublishBundle(Profile),
    /// Send an empty OMEMO message to the device: completes a key exchange, or is a heartbeat.
    SendEmpty(DeviceAddress),
    /// A message came from a device we have no session with: fetch its bundle, build a session and
    /// send it an empty message (XEP-0384 business rules).
    RebuildSession(DeviceAddress),
    /// A message came from a device missing from our copy of the account's device list.
    RefreshDeviceList {
        /// The namespace.
        profile: Profile,
        /// The account.
        jid: String,
    },
}

/// Why a device got no key in an [`Encryption`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// Its identity key is undecided or distrusted.
    Untrusted(TrustLevel),
    /// It has not answered [`OmemoConfig::stale_after`] messages.
    Stale,
    /// There is no session with it (its bundle could not be fetched).
    NoSession,
}

/// The outcome of [`OmemoManager::encrypt`].
#[derive(Debug, Clone)]
pub struct Encryption {
    /// The `<encrypted>` element to send.
    pub encrypted: Encrypted,
    /// The devices that got a key.
    pub recipients: Vec<DeviceAddress>,
    /// The devices left out, and why.
    pub skipped: Vec<(DeviceAddress, SkipReason)>,
}

/// A decrypted message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decrypted {
    /// The sending device.
    pub sender: DeviceAddress,
    /// The payload (OMEMO:2: a XEP-0420 envelope; legacy: the body text); `None` for an empty
    /// (key-transport, heartbeat) message.
    pub plaintext: Option<Vec<u8>>,
    /// Trust in the sender's identity key. Content of untrusted devices should be flagged.
    pub trust: TrustLevel,
    /// Whether the message started a new session (a key exchange).
    pub new_session: bool,
}

/// Longest key material [`OmemoManager::encrypt_key_transport`] sends.
pub const MAX_KEY_TRANSPORT_MATERIAL: usize = 64;

/// A decrypted key-transport message (see [`OmemoManager::decrypt_key_transport`]).
#[derive(Clone, PartialEq, Eq)]
pub struct KeyTransport {
    /// The sending device.
    pub sender: DeviceAddress,
    /// The key material the ratchet delivered (secret).
    pub material: Vec<u8>,
    /// The message's `<iv>` (legacy only).
    pub iv: Option<Vec<u8>>,
    /// Trust in the sender's identity key.
    pub trust: TrustLevel,
    /// Whether the message started a new session (a key exchange).
    pub new_session: bool,
}

impl std::fmt::Debug for KeyTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the key material.
        f.debug_struct("KeyTransport")
            .field("sender", &self.sender)
            .field(
                "material",
                &format_args!("<{} bytes redacted>", self.material.len()),
            )
            .field("iv_len", &self.iv.as_ref().map(Vec::len))
            .field("trust", &self.trust)
            .field("new_session", &self.new_session)
            .finish()
    }
}

/// Errors of the manager.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManagerError {
    /// The ratchet core refused the data (tampered, replayed, malformed...). State is unchanged.
    #[error(transparent)]
    Omemo(#[from] OmemoError),
    /// The key store failed.
    #[error("key store: {0}")]
    Store(Box<dyn std::error::Error + Send + Sync>),
    /// The message has no key for this device.
    #[error("the message carries no key for this device")]
    NotForThisDevice,
    /// A message that is not a key exchange came from a device without a session
    /// ([`Action::RebuildSession`] was queued).
    #[error("no session with {0:?}")]
    NoSession(DeviceAddress),
    /// A recipient has no device that may receive the message.
    #[error("no trusted, active device of {0} can receive the message")]
    NoTrustedDevice(String),
    /// The profile is not enabled in [`OmemoConfig::profiles`].
    #[error("the OMEMO profile {0:?} is not enabled")]
    ProfileDisabled(Profile),
    /// A bundle was offered for a device in another profile, or for this very device.
    #[error("the bundle does not belong to {0:?}")]
    WrongBundle(DeviceAddress),
    /// The message has a payload but the profile's framing is incomplete (legacy without `<iv>`).
    #[error("malformed message: {0}")]
    Malformed(&'static str),
}

/// Result alias of the manager.
pub type ManagerResult<T> = std::result::Result<T, ManagerError>;

fn store_err<E: std::error::Error + Send + Sync + 'static>(e: E) -> ManagerError {
    ManagerError::Store(Box::new(e))
}

/// The manager's source of the current time, in seconds since the Unix epoch (see
/// [`OmemoManager::open_with_clock`]).
pub type Clock = Box<dyn Fn() -> u64 + Send + Sync>;

fn system_clock() -> Clock {
    Box::new(super::keys::unix_now)
}

/// One account's OMEMO device: keys, sessions, trust, in a store. Sans-IO; see the module docs.
pub struct OmemoManager<S: OmemoStore> {
    store: S,
    own_jid: String,
    device_id: u32,
    keys: DeviceKeys,
    config: OmemoConfig,
    decider: Option<Box<dyn TrustDecider>>,
    actions: VecDeque<Action>,
    clock: Clock,
}

impl<S: OmemoStore> std::fmt::Debug for OmemoManager<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OmemoManager")
            .field("own_jid", &self.own_jid)
            .field("device_id", &self.device_id)
            .finish_non_exhaustive()
    }
}

/// Bound on queued actions: beyond it the oldest are dropped (they are all retried by later traffic).
const MAX_ACTIONS: usize = 256;

impl<S: OmemoStore> OmemoManager<S> {
    /// Opens the device stored in `store`, or creates one (random device id, fresh keys) for the bare
    /// JID `own_jid`. Time is read from the system clock. A signed prekey rotation that is due is
    /// done right away (see [`OmemoConfig::signed_prekey_rotation`]).
    pub fn open(store: S, own_jid: &str, config: OmemoConfig) -> ManagerResult<Self> {
        Self::open_with_clock(store, own_jid, config, system_clock())
    }

    /// [`OmemoManager::open`] with another clock (seconds since the Unix epoch), which drives the
    /// signed prekey rotation and the devices' last-received times. Tests use it to move time.
    pub fn open_with_clock(
        mut store: S,
        own_jid: &str,
        config: OmemoConfig,
        clock: impl Fn() -> u64 + Send + Sync + 'static,
    ) -> ManagerResult<Self> {
        let clock: Clock = Box::new(clock);
        let (device_id, mut keys) = match store.load_own_device().map_err(store_err)? {
            Some(found) => found,
            None => {
                let id = loop {
                    let id = u32::from_le_bytes(super::crypto::random()) & 0x7fff_ffff;
                    if id != 0 {
                        break id;
                    }
                };
                (id, DeviceKeys::generate_at(0, clock()))
            }
        };
        keys.refill_prekeys(config.prekeys);
        store
            .store_own_device(device_id, &keys)
            .map_err(store_err)?;
        let mut manager = OmemoManager {
            store,
            own_jid: own_jid.to_owned(),
            device_id,
            keys,
            config,
            decider: None,
            actions: VecDeque::new(),
            clock,
        };
        manager.rotate_signed_prekey_if_due()?;
        Ok(manager)
    }

    /// Replaces the clock (seconds since the Unix epoch); see [`OmemoManager::open_with_clock`].
    pub fn set_clock(&mut self, clock: impl Fn() -> u64 + Send + Sync + 'static) {
        self.clock = Box::new(clock);
    }

    /// The current time by the manager's clock, in seconds since the Unix epoch.
    pub fn now(&self) -> u64 {
        (self.clock)()
    }

    /// Sets the application's trust callback, asked about each newly seen identity key.
    pub fn set_trust_decider(&mut self, decider: impl TrustDecider + 'static) {
        self.decider = Some(Box::new(decider));
    }

    /// This device's id.
    pub fn device_id(&self) -> u32 {
        self.device_id
    }

    /// The account's bare JID.
    pub fn own_jid(&self) -> &str {
        &self.own_jid
    }

    /// This device's keys (secret!).
    pub fn keys(&self) -> &DeviceKeys {
        &self.keys
    }

    /// The settings.
    pub fn config(&self) -> &OmemoConfig {
        &self.config
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Gives the store back.
    pub fn into_store(self) -> S {
        self.store
    }

    /// This device's fingerprint (see [`fingerprint`]).
    pub fn own_fingerprint(&self) -> String {
        fingerprint(
            Profile::Omemo2,
            &self.keys.identity.wire_public(Profile::Omemo2),
        )
        .unwrap_or_default()
    }

    /// The bundle to publish in `profile`.
    pub fn bundle(&self, profile: Profile) -> Bundle {
        self.keys.bundle(profile)
    }

    /// Actions queued by the last calls, oldest first.
    pub fn take_actions(&mut self) -> Vec<Action> {
        self.actions.drain(..).collect()
    }

    fn push(&mut self, action: Action) {
        if self.actions.contains(&action) {
            return;
        }
        if self.actions.len() >= MAX_ACTIONS {
            self.actions.pop_front();
        }
        self.actions.push_back(action);
    }

    fn check_profile(&self, profile: Profile) -> ManagerResult<()> {
        if self.config.profiles.contains(&profile) {
            Ok(())
        } else {
            Err(ManagerError::ProfileDisabled(profile))
        }
    }

    fn record(&self, address: &DeviceAddress) -> ManagerResult<DeviceRecord> {
        Ok(self
            .store
            .load_device(address)
            .map_err(store_err)?
            .unwrap_or_default())
    }

    fn save_record(&mut self, address: &DeviceAddress, record: &DeviceRecord) -> ManagerResult<()> {
        self.store.store_device(address, record).map_err(store_err)
    }

    /// Records a newly seen (or changed) identity key on `record` and decides its trust.
    fn learn_identity(
        &self,
        address: &DeviceAddress,
        record: &mut DeviceRecord,
        identity_key: &[u8],
    ) -> ManagerResult<()> {
        if record.identity_key.as_deref() == Some(identity_key) {
            return Ok(());
        }
        let fp = fingerprint(address.profile, identity_key)?;
        let decided = self
            .decider
            .as_ref()
            .and_then(|d| d.decide(address.profile, &address.jid, address.device_id, &fp));
        record.trust = match decided {
            Some(level) => level,
            None => match self.config.trust_policy {
                TrustPolicy::Manual => TrustLevel::Undecided,
                TrustPolicy::BlindTrustBeforeVerification => {
                    let any_verified = self
                        .store
                        .devices(address.profile, &address.jid)
                        .map_err(store_err)?
                        .iter()
                        .any(|(_, r)| r.trust == TrustLevel::Verified);
                    if any_verified {
                        TrustLevel::Undecided
                    } else {
                        TrustLevel::BlindTrusted
                    }
                }
            },
        };
        record.identity_key = Some(identity_key.to_vec());
        verify_label(address.profile, record);
        Ok(())
    }

    /// Applies a device list fetched from (or pushed by) `jid`'s PEP service: listed devices become
    /// active (labels kept only when their signature verifies), the others inactive.
    pub fn apply_device_list(&mut self, jid: &str, list: &DeviceList) -> ManagerResult<()> {
        let profile = list.profile;
        let known = self.store.devices(profile, jid).map_err(store_err)?;
        for (id, mut record) in known {
            if record.active && !list.devices.iter().any(|d| d.id == id) {
                record.active = false;
                self.save_record(&DeviceAddress::new(profile, jid, id), &record)?;
            }
        }
        for entry in &list.devices {
            if jid == self.own_jid && entry.id == self.device_id {
                continue;
            }
            let address = DeviceAddress::new(profile, jid, entry.id);
            let mut record = self.record(&address)?;
            let before = record.clone();
            record.active = true;
            if profile == Profile::Omemo2 {
                record.label_signature = entry.label_signature.clone();
                record.label = entry.label.clone();
                verify_label(profile, &mut record);
            }
            if record != before
                || self
                    .store
                    .load_device(&address)
                    .map_err(store_err)?
                    .is_none()
            {
                self.save_record(&address, &record)?;
            }
        }
        Ok(())
    }

    /// The known devices of `jid` in `profile` with what is known about them.
    pub fn devices(&self, profile: Profile, jid: &str) -> ManagerResult<Vec<(u32, DeviceRecord)>> {
        self.store.devices(profile, jid).map_err(store_err)
    }

    /// Devices of `jids` (and of the own account) that should get keys but have no session yet: the
    /// driver fetches their bundles and hands them to [`OmemoManager::add_bundle`].
    pub fn missing_sessions(
        &self,
        profile: Profile,
        jids: &[&str],
    ) -> ManagerResult<Vec<DeviceAddress>> {
        let mut out = Vec::new();
        for address in self.targets(profile, jids)? {
            let record = self.record(&address)?;
            if record.trust == TrustLevel::Distrusted {
                continue;
            }
            if self
                .store
                .load_session(&address)
                .map_err(store_err)?
                .is_none()
            {
                out.push(address);
            }
        }
        Ok(out)
    }

    /// Active devices of `jids` plus the own account's other active devices.
    fn targets(&self, profile: Profile, jids: &[&str]) -> ManagerResult<Vec<DeviceAddress>> {
        let mut out: Vec<DeviceAddress> = Vec::new();
        let own = self.own_jid.clone();
        for jid in jids.iter().copied().chain(std::iter::once(own.as_str())) {
            if out.iter().any(|a| a.jid == jid) {
                continue;
            }
            for (id, record) in self.store.devices(profile, jid).map_err(store_err)? {
                if !record.active || (jid == self.own_jid && id == self.device_id) {
                    continue;
                }
                out.push(DeviceAddress::new(profile, jid, id));
            }
        }
        Ok(out)
    }

    /// Builds a session with `address` from its (fetched) bundle: X3DH after checking the bundle's
    /// signature; the identity key is recorded and its trust decided.
    pub fn add_bundle(&mut self, address: &DeviceAddress, bundle: &Bundle) -> ManagerResult<()> {
        self.check_profile(address.profile)?;
        self.rotate_signed_prekey_if_due()?;
        if bundle.profile != address.profile
            || (address.jid == self.own_jid && address.device_id == self.device_id)
        {
            return Err(ManagerError::WrongBundle(address.clone()));
        }
        let session = self.keys.initiate(bundle)?;
        let mut record = self.record(address)?;
        self.learn_identity(address, &mut record, &bundle.identity_key)?;
        self.store
            .store_session(address, &session)
            .map_err(store_err)?;
        self.save_record(address, &record)
    }

    /// Encrypts `plaintext` (OMEMO:2: a XEP-0420 envelope, legacy: body text) for every active,
    /// trusted, non-stale device of `jids` and of the own account. Fails with
    /// [`ManagerError::NoTrustedDevice`] when one of `jids` would get no key at all.
    pub fn encrypt(
        &mut self,
        profile: Profile,
        plaintext: &[u8],
        jids: &[&str],
    ) -> ManagerResult<Encryption> {
        self.check_profile(profile)?;
        let (material, payload) = payload::encrypt(profile, plaintext);
        let mut out = self.encrypt_material(profile, &material, jids, true)?;
        out.encrypted.payload = Some(payload.ciphertext);
        out.encrypted.iv = payload.iv;
        Ok(out)
    }

    fn encrypt_material(
        &mut self,
        profile: Profile,
        material: &[u8],
        jids: &[&str],
        require_each: bool,
    ) -> ManagerResult<Encryption> {
        self.rotate_signed_prekey_if_due()?;
        let mut keys = Vec::new();
        let mut recipients = Vec::new();
        let mut skipped = Vec::new();
        let mut pending = Vec::new();
        for address in self.targets(profile, jids)? {
            let record = self.record(&address)?;
            if !record.trust.may_encrypt() {
                skipped.push((address, SkipReason::Untrusted(record.trust)));
                continue;
            }
            if record.unanswered >= self.config.stale_after {
                skipped.push((address, SkipReason::Stale));
                continue;
            }
            let Some(mut session) = self.store.load_session(&address).map_err(store_err)? else {
                skipped.push((address, SkipReason::NoSession));
                continue;
            };
            let key = session.encrypt(material)?;
            keys.push(MessageKey {
                jid: (profile == Profile::Omemo2).then(|| address.jid.clone()),
                rid: address.device_id,
                key_exchange: key.key_exchange,
                data: key.data,
            });
            pending.push((address.clone(), session, record));
            recipients.push(address);
        }
        if require_each {
            for jid in jids {
                if *jid != self.own_jid && !recipients.iter().any(|a| a.jid == *jid) {
                    return Err(ManagerError::NoTrustedDevice((*jid).to_owned()));
                }
            }
        }
        // Only now is state written: a refused encryption changes nothing.
        for (address, session, mut record) in pending {
            self.store
                .store_session(&address, &session)
                .map_err(store_err)?;
            record.unanswered = record.unanswered.saturating_add(1);
            self.save_record(&address, &record)?;
        }
        Ok(Encryption {
            encrypted: Encrypted {
                profile,
                sid: self.device_id,
                keys,
                iv: None,
                payload: None,
            },
            recipients,
            skipped,
        })
    }

    /// An empty message (key transport, heartbeat, session completion) for one device. Trust is not
    /// required: it carries no content.
    pub fn encrypt_empty(&mut self, address: &DeviceAddress) -> ManagerResult<Encrypted> {
        self.check_profile(address.profile)?;
        self.rotate_signed_prekey_if_due()?;
        let profile = address.profile;
        let mut session = self
            .store
            .load_session(address)
            .map_err(store_err)?
            .ok_or_else(|| ManagerError::NoSession(address.clone()))?;
        let material = payload::empty_key_material(profile);
        let key = session.encrypt(&material)?;
        self.store
            .store_session(address, &session)
            .map_err(store_err)?;
        Ok(Encrypted {
            profile,
            sid: self.device_id,
            keys: vec![MessageKey {
                jid: (profile == Profile::Omemo2).then(|| address.jid.clone()),
                rid: address.device_id,
                key_exchange: key.key_exchange,
                data: key.data,
            }],
            iv: (profile == Profile::Legacy).then(|| super::crypto::random::<12>().to_vec()),
            payload: None,
        })
    }

    /// Key transport (XEP-0384 KeyTransportElement): encrypts caller-provided key `material` for every
    /// active, trusted, non-stale device of `jids` and of the own account, in a message without
    /// `<payload>`. What the material is belongs to the caller (e.g. a JET transport secret, XEP-0396).
    ///
    /// * Legacy: the `<key>` elements carry `material` as it is (Conversations and Dino put the bare
    ///   16-byte AES key there, with no tag) and `<iv>` carries `iv` (12 random bytes when `None`).
    /// * OMEMO:2: the `<key>` elements carry `material` (XEP-0384 makes it 32 bytes: other
    ///   implementations read the first 32 bytes as the key); OMEMO:2 has no `<iv>`, so `iv` must be
    ///   `None`.
    ///
    /// `material` must be 1 to [`MAX_KEY_TRANSPORT_MATERIAL`] bytes and an `iv` 1 to 64 bytes, or
    /// [`ManagerError::Malformed`] is returned. Fails with [`ManagerError::NoTrustedDevice`] when one
    /// of `jids` would get no key at all; nothing is changed then.
    pub fn encrypt_key_transport(
        &mut self,
        profile: Profile,
        material: &[u8],
        iv: Option<&[u8]>,
        jids: &[&str],
    ) -> ManagerResult<Encryption> {
        self.check_profile(profile)?;
        if material.is_empty() || material.len() > MAX_KEY_TRANSPORT_MATERIAL {
            return Err(ManagerError::Malformed("key transport material length"));
        }
        let iv = match (profile, iv) {
            (Profile::Omemo2, Some(_)) => {
                return Err(ManagerError::Malformed("OMEMO:2 messages carry no <iv>"))
            }
            (Profile::Omemo2, None) => None,
            (Profile::Legacy, Some(iv)) if iv.is_empty() || iv.len() > 64 => {
                return Err(ManagerError::Malformed("key transport IV length"))
            }
            (Profile::Legacy, Some(iv)) => Some(iv.to_vec()),
            (Profile::Legacy, None) => Some(super::crypto::random::<12>().to_vec()),
        };
        let mut out = self.encrypt_material(profile, material, jids, true)?;
        out.encrypted.iv = iv;
        Ok(out)
    }

    /// Decrypts a key-transport message from the bare JID `sender` and returns the transported key
    /// material (see [`OmemoManager::encrypt_key_transport`]). A message that has a payload too (some
    /// implementations send a dummy one) is decrypted and checked as usual; its key material (the
    /// payload key and tag) is returned. State handling is that of [`OmemoManager::decrypt`].
    pub fn decrypt_key_transport(
        &mut self,
        sender: &str,
        message: &Encrypted,
    ) -> ManagerResult<KeyTransport> {
        let (decrypted, material) = self.decrypt_full(sender, message)?;
        Ok(KeyTransport {
            sender: decrypted.sender,
            material,
            iv: message.iv.clone(),
            trust: decrypted.trust,
            new_session: decrypted.new_session,
        })
    }

    /// Decrypts a message from the bare JID `sender`. On success the session and records are saved;
    /// on any error nothing changed (apart from queued actions, see [`OmemoManager::take_actions`],
    /// and a signed prekey rotation that was due anyway).
    pub fn decrypt(&mut self, sender: &str, message: &Encrypted) -> ManagerResult<Decrypted> {
        self.decrypt_full(sender, message).map(|(d, _)| d)
    }

    fn decrypt_full(
        &mut self,
        sender: &str,
        message: &Encrypted,
    ) -> ManagerResult<(Decrypted, Vec<u8>)> {
        let profile = message.profile;
        self.check_profile(profile)?;
        // Before the key exchange, if any: a key exchange against the key retired here still works.
        self.rotate_signed_prekey_if_due()?;
        let address = DeviceAddress::new(profile, sender, message.sid);
        let own_jid = self.own_jid.clone();
        let key = message
            .keys_for(Some(&own_jid), self.device_id)
            .next()
            .ok_or(ManagerError::NotForThisDevice)?;
        if profile == Profile::Legacy && message.payload.is_some() && message.iv.is_none() {
            return Err(ManagerError::Malformed("legacy payload without <iv>"));
        }
        let mut record = self.record(&address)?;
        let existing = self.store.load_session(&address).map_err(store_err)?;
        if existing.is_none() && !key.key_exchange {
            self.push(Action::RebuildSession(address.clone()));
            return Err(ManagerError::NoSession(address));
        }
        let header = ratchet_header(profile, &key.data, key.key_exchange)?;

        // Decrypt the key material on copies; commit only when the payload decrypts too.
        let mut new_keys = None;
        let (session, material) = match (existing, key.key_exchange) {
            (Some(mut s), false) => {
                let m = s.decrypt(&key.data, false)?;
                (s, m)
            }
            (Some(mut s), true) => match s.decrypt(&key.data, true) {
                Ok(m) => (s, m),
                Err(OmemoError::KeyExchangeMismatch) => {
                    let mut keys = self.keys.clone();
                    let (s, m) = keys.accept(profile, &key.data)?;
                    new_keys = Some(keys);
                    (s, m)
                }
                Err(e) => return Err(e.into()),
            },
            (None, true) => {
                let mut keys = self.keys.clone();
                let (s, m) = keys.accept(profile, &key.data)?;
                new_keys = Some(keys);
                (s, m)
            }
            (None, false) => return Err(ManagerError::NoSession(address)),
        };
        let plaintext = match &message.payload {
            None => None,
            Some(ciphertext) => {
                let payload = EncryptedPayload {
                    ciphertext: ciphertext.clone(),
                    iv: message.iv.clone(),
                };
                Some(payload::decrypt(profile, &material, &payload)?)
            }
        };
        let new_session = new_keys.is_some();
        self.learn_identity(&address, &mut record, session.remote_identity_key())?;
        if let Some(mut keys) = new_keys {
            keys.refill_prekeys(self.config.prekeys);
            self.store
                .store_own_device(self.device_id, &keys)
                .map_err(store_err)?;
            self.keys = keys;
            // Both profiles publish the same one-time prekeys: republish both bundles.
            for p in self.config.profiles.clone() {
                self.push(Action::RepublishBundle(p));
            }
            self.push(Action::SendEmpty(address.clone()));
        }
        let (ratchet_key, counter) = header;
        if counter >= HEARTBEAT_COUNTER && record.heartbeat_key.as_deref() != Some(&ratchet_key) {
            record.heartbeat_key = Some(ratchet_key);
            self.push(Action::SendEmpty(address.clone()));
        }
        if !record.active
            || self
                .store
                .load_device(&address)
                .map_err(store_err)?
                .is_none()
        {
            // Not on our copy of the device list (XEP-0384: refresh it).
            self.push(Action::RefreshDeviceList {
                profile,
                jid: sender.to_owned(),
            });
        }
        record.unanswered = 0;
        record.last_received = Some(i64::try_from(self.now()).unwrap_or(i64::MAX));
        self.store
            .store_session(&address, &session)
            .map_err(store_err)?;
        let trust = record.trust;
        self.save_record(&address, &record)?;
        Ok((
            Decrypted {
                sender: address,
                plaintext,
                trust,
                new_session,
            },
            material,
        ))
    }

    /// Sets the trust in a device's identity key (manual verification or refusal).
    pub fn set_trust(&mut self, address: &DeviceAddress, trust: TrustLevel) -> ManagerResult<()> {
        let mut record = self.record(address)?;
        record.trust = trust;
        self.save_record(address, &record)
    }

    /// The fingerprint of a device's identity key, once known.
    pub fn fingerprint_of(&self, address: &DeviceAddress) -> ManagerResult<Option<String>> {
        match self.record(address)?.identity_key {
            Some(ik) => Ok(Some(fingerprint(address.profile, &ik)?)),
            None => Ok(None),
        }
    }

    /// Forgets the session with a device (the manual "replace broken session" of XEP-0384); the
    /// next message to it builds a new one from its bundle.
    pub fn replace_session(&mut self, address: &DeviceAddress) -> ManagerResult<()> {
        self.store.delete_session(address).map_err(store_err)
    }

    /// Replaces the signed prekey now, whatever its age (e.g. after a suspected compromise); the
    /// current one stays accepted for [`OmemoConfig::old_signed_prekey_lifetime`]. Queues bundle
    /// republication in every profile. Periodic rotation happens by itself (see
    /// [`OmemoConfig::signed_prekey_rotation`]).
    pub fn rotate_signed_prekey(&mut self) -> ManagerResult<()> {
        let mut keys = self.keys.clone();
        keys.rotate_signed_prekey_at(self.now());
        self.store
            .store_own_device(self.device_id, &keys)
            .map_err(store_err)?;
        self.keys = keys;
        for p in self.config.profiles.clone() {
            self.push(Action::RepublishBundle(p));
        }
        Ok(())
    }

    /// Rotates the signed prekey when [`OmemoConfig::signed_prekey_rotation`] says it is due (bundle
    /// republication is queued), and drops the previous one once
    /// [`OmemoConfig::old_signed_prekey_lifetime`] has passed since it was retired. Changes are
    /// stored before they take effect. Returns whether the signed prekey was rotated.
    ///
    /// The manager calls this itself on its entry points; a driver that may sit idle for long calls
    /// it from a timer set to [`OmemoManager::next_signed_prekey_change`].
    pub fn rotate_signed_prekey_if_due(&mut self) -> ManagerResult<bool> {
        let now = self.now();
        let rotate = self
            .config
            .signed_prekey_rotation
            .is_some_and(|period| self.keys.signed_prekey_rotation_due(period, now));
        let mut keys = self.keys.clone();
        if rotate {
            keys.rotate_signed_prekey_at(now);
        }
        let expired = keys.expire_old_signed_prekey(self.config.old_signed_prekey_lifetime, now);
        if !rotate && !expired {
            return Ok(false);
        }
        self.store
            .store_own_device(self.device_id, &keys)
            .map_err(store_err)?;
        self.keys = keys;
        if rotate {
            tracing::debug!(
                signed_prekey_id = self.keys.signed_prekey.id,
                "OMEMO signed prekey rotated"
            );
            for p in self.config.profiles.clone() {
                self.push(Action::RepublishBundle(p));
            }
        }
        Ok(rotate)
    }

    /// When (seconds since the Unix epoch) the signed prekeys next change by themselves: the next
    /// rotation, or the previous key's expiry if that comes first. `None` when nothing is scheduled
    /// (rotation disabled and no previous key, or creation times unknown). A time in the past means
    /// now.
    pub fn next_signed_prekey_change(&self) -> Option<u64> {
        let current = &self.keys.signed_prekey;
        let created = current.created();
        let rotation = match (self.config.signed_prekey_rotation, created) {
            (None, _) => None,
            (Some(_), None) => Some(self.now()),
            // A creation time that far ahead is a clock error: due now (see
            // `DeviceKeys::signed_prekey_rotation_due`).
            (Some(period), Some(c)) if c.saturating_sub(self.now()) > period.as_secs() => {
                Some(self.now())
            }
            (Some(period), Some(c)) => Some(c.saturating_add(period.as_secs())),
        };
        let expiry = match (&self.keys.old_signed_prekey, created) {
            (Some(_), Some(c)) => {
                Some(c.saturating_add(self.config.old_signed_prekey_lifetime.as_secs()))
            }
            _ => None,
        };
        match (rotation, expiry) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Takes the queued bundle republication of `profile` out of the queue (the driver is about to
    /// publish the current bundle anyway); returns whether one was queued.
    pub(crate) fn take_republish(&mut self, profile: Profile) -> bool {
        let before = self.actions.len();
        self.actions
            .retain(|a| *a != Action::RepublishBundle(profile));
        self.actions.len() != before
    }

    /// Queues an action again (a bundle republication that failed).
    pub(crate) fn requeue(&mut self, action: Action) {
        self.push(action);
    }
}

/// Keeps an OMEMO:2 label only when its signature verifies against the known identity key.
fn verify_label(profile: Profile, record: &mut DeviceRecord) {
    use ed25519_dalek::{Signature, VerifyingKey};
    if profile != Profile::Omemo2 || record.label.is_none() {
        return;
    }
    let Some(ik) = &record.identity_key else {
        // Unknown key: nothing to check against; the next device list refresh brings it back.
        record.label = None;
        return;
    };
    let valid = (|| {
        let key: [u8; 32] = ik.as_slice().try_into().ok()?;
        let vk = VerifyingKey::from_bytes(&key).ok()?;
        let sig = Signature::from_slice(record.label_signature.as_deref()?).ok()?;
        vk.verify_strict(record.label.as_deref()?.as_bytes(), &sig)
            .ok()
    })()
    .is_some();
    if !valid {
        record.label = None;
    }
}
