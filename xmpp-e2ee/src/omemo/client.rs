//! [`OmemoClient`]: the async driver of an [`OmemoManager`] over any [`Connection`].
//!
//! It publishes this device (bundle and device-list entry, in every enabled profile), refreshes device
//! lists and fetches bundles before encrypting, wraps OMEMO:2 content in a XEP-0420 envelope (legacy
//! OMEMO carries the body text only), adds the XEP-0380 and XEP-0334 hints (and, for legacy OMEMO only,
//! a plaintext fallback body: XEP-0420 forbids one beside an envelope), and on receipt decrypts, checks the envelope's `from`/`to`, and performs the manager's
//! [`Action`]s (bundle republication, key-exchange completion, heartbeats, session rebuilds).
//!
//! The manager sits behind a `std::sync::Mutex` that is never held across an `.await`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use jid::{BareJid, Jid};
use minidom::Element;
use xmpp_parsers::message::Message;
use xmpp_social::connection::IqRequest;
use xmpp_social::error::{Error, ParseError};
use xmpp_social::xml::BuilderExt;
use xmpp_social::Connection;

use super::error::OmemoError;
use super::manager::{Action, Encryption, KeyTransport, ManagerError, OmemoConfig, OmemoManager};
use super::pep::{device_list_in_event, devices_node, OmemoPepExt};
use super::profile::Profile;
use super::store::{DeviceAddress, OmemoStore};
use super::trust::TrustLevel;
use super::xml::Encrypted;
use crate::sce::{Envelope, SceError};

/// XEP-0380 namespace.
pub const NS_EME: &str = "urn:xmpp:eme:0";
/// XEP-0334 namespace.
pub const NS_HINTS: &str = "urn:xmpp:hints";
const NS_CLIENT: &str = "jabber:client";
/// XEP-0280 namespace.
pub const NS_CARBONS: &str = "urn:xmpp:carbons:2";
const NS_FORWARD: &str = "urn:xmpp:forward:0";
const NS_PUBSUB_EVENT: &str = "http://jabber.org/protocol/pubsub#event";
/// At most this many device lists are remembered as fresh (the oldest entries are dropped first).
const MAX_FRESH_LISTS: usize = 4096;

/// The plaintext body sent beside encrypted content, for clients without OMEMO.
pub const FALLBACK_BODY: &str =
    "This message is encrypted with OMEMO, which your client does not seem to support.";

/// Errors of [`OmemoClient`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The network or the server failed.
    #[error(transparent)]
    Xmpp(#[from] Error),
    /// The OMEMO layer refused (tampered, replayed, untrusted...).
    #[error(transparent)]
    Manager(#[from] ManagerError),
    /// The OMEMO:2 envelope is malformed or its `from`/`to` do not match the stanza.
    #[error(transparent)]
    Sce(#[from] SceError),
    /// The decrypted legacy body is not UTF-8, or a stanza is otherwise malformed.
    #[error("malformed message: {0}")]
    Malformed(&'static str),
    /// The manager's lock was poisoned by a panic in another task.
    #[error("the OMEMO state lock is poisoned")]
    Poisoned,
}

/// Result alias of [`OmemoClient`].
pub type ClientResult<T> = std::result::Result<T, ClientError>;

/// A decrypted incoming message.
#[derive(Debug, Clone, PartialEq)]
pub struct DecryptedMessage {
    /// The stanza's sender (full JID when the server gave one).
    pub from: Jid,
    /// The namespace it came in.
    pub profile: Profile,
    /// The sending device.
    pub device_id: u32,
    /// Trust in the sending device: content of untrusted devices should be shown as such.
    pub trust: TrustLevel,
    /// The decrypted content: the XEP-0420 `<content>` children (OMEMO:2), or a `<body>` (legacy).
    /// Empty for key-transport and heartbeat messages.
    pub content: Vec<Element>,
    /// The text of the first `<body>` of the content, if any.
    pub body: Option<String>,
    /// Whether the message started a new session.
    pub new_session: bool,
}

/// OMEMO over a [`Connection`]; cheap to clone when the connection is.
#[derive(Debug)]
pub struct OmemoClient<C, S: OmemoStore> {
    conn: C,
    manager: Arc<Mutex<OmemoManager<S>>>,
    /// When each (profile, bare JID) device list was last fetched or pushed.
    fresh: Arc<Mutex<HashMap<(Profile, String), Instant>>>,
}

impl<C: Clone, S: OmemoStore> Clone for OmemoClient<C, S> {
    fn clone(&self) -> Self {
        OmemoClient {
            conn: self.conn.clone(),
            manager: Arc::clone(&self.manager),
            fresh: Arc::clone(&self.fresh),
        }
    }
}

fn bare(jid: &BareJid) -> String {
    jid.to_string()
}

fn find_encrypted(message: &Message) -> Option<&Element> {
    message
        .payloads
        .iter()
        .find(|p| p.name() == "encrypted" && Profile::from_namespace(&p.ns()).is_some())
}

/// Builds the `<message/>` carrying an `<encrypted/>` element; `fallback` adds the plaintext body.
pub fn message_stanza(to: Jid, encrypted: &Encrypted, fallback: bool) -> Message {
    let profile = encrypted.profile;
    let mut message = Message::chat(Some(to)).with_payloads(vec![
        Element::from(encrypted),
        Element::builder("encryption", NS_EME)
            .a("namespace", profile.namespace())
            .a(
                "name",
                match profile {
                    Profile::Omemo2 => "OMEMO",
                    Profile::Legacy => "OMEMO",
                },
            )
            .build(),
        Element::builder("store", NS_HINTS).build(),
    ]);
    if fallback {
        message.bodies.insert(
            xmpp_parsers::message::Lang::default(),
            FALLBACK_BODY.to_owned(),
        );
    }
    message
}

impl<C: Connection, S: OmemoStore + Send + 'static> OmemoClient<C, S> {
    /// Opens (or creates) this account's device in `store`.
    pub fn new(conn: C, store: S, config: OmemoConfig) -> ClientResult<Self> {
        let own = bare(&conn.jid().to_bare());
        let manager = OmemoManager::open(store, &own, config)?;
        Ok(OmemoClient {
            conn,
            manager: Arc::new(Mutex::new(manager)),
            fresh: Arc::new(Mutex::new(HashMap::new())),
        })
    }

    /// The connection.
    pub fn connection(&self) -> &C {
        &self.conn
    }

    /// Locks the manager for trust decisions, fingerprints and device queries. Don't hold the guard
    /// across an `.await`.
    pub fn manager(&self) -> ClientResult<MutexGuard<'_, OmemoManager<S>>> {
        self.manager.lock().map_err(|_| ClientError::Poisoned)
    }

    /// This device's id.
    pub fn device_id(&self) -> ClientResult<u32> {
        Ok(self.manager()?.device_id())
    }

    fn own_bare(&self) -> BareJid {
        self.conn.jid().to_bare()
    }

    /// Publishes this device's bundle and device-list entry in every enabled profile (other devices'
    /// entries are kept) and learns the own device lists.
    pub async fn publish(&self) -> ClientResult<()> {
        let profiles = self.manager()?.config().profiles.clone();
        for profile in profiles {
            self.publish_profile(profile).await?;
        }
        Ok(())
    }

    async fn publish_profile(&self, profile: Profile) -> ClientResult<()> {
        let (keys, id, label, was_queued) = {
            let mut m = self.manager()?;
            // This publication carries every key change made so far: republications queued for the
            // profile are done by it (or queued again if it fails).
            let was_queued = m.take_republish(profile);
            (
                m.keys().clone(),
                m.device_id(),
                m.config().label.clone(),
                was_queued,
            )
        };
        let list = match self
            .conn
            .publish_device(&keys, id, profile, label.as_deref())
            .await
        {
            Ok(list) => list,
            Err(e) => {
                if was_queued {
                    self.manager()?.requeue(Action::RepublishBundle(profile));
                }
                return Err(e.into());
            }
        };
        let own = bare(&self.own_bare());
        self.manager()?.apply_device_list(&own, &list)?;
        self.mark_fresh(profile, own)?;
        Ok(())
    }

    fn mark_fresh(&self, profile: Profile, jid: String) -> ClientResult<()> {
        let mut fresh = self.fresh.lock().map_err(|_| ClientError::Poisoned)?;
        if fresh.len() >= MAX_FRESH_LISTS && !fresh.contains_key(&(profile, jid.clone())) {
            if let Some(oldest) = fresh
                .iter()
                .min_by_key(|(_, t)| **t)
                .map(|(k, _)| k.clone())
            {
                fresh.remove(&oldest);
            }
        }
        fresh.insert((profile, jid), Instant::now());
        Ok(())
    }

    fn is_fresh(&self, profile: Profile, jid: &str) -> ClientResult<bool> {
        let ttl = self.manager()?.config().device_list_ttl;
        let fresh = self.fresh.lock().map_err(|_| ClientError::Poisoned)?;
        Ok(fresh
            .get(&(profile, jid.to_owned()))
            .is_some_and(|t| t.elapsed() < ttl))
    }

    /// Fetches `jid`'s device list in `profile` and applies it (always, whatever its age).
    pub async fn refresh_devices(&self, profile: Profile, jid: &BareJid) -> ClientResult<()> {
        let own = *jid == self.own_bare();
        let peer = Jid::from(jid.clone());
        let list = self
            .conn
            .device_list(if own { None } else { Some(&peer) }, profile)
            .await?;
        self.manager()?.apply_device_list(&bare(jid), &list)?;
        self.mark_fresh(profile, bare(jid))?;
        Ok(())
    }

    /// Applies a device list pushed by PEP (a XEP-0060 notification in `message`), when `message` is
    /// one: returns whether it was. Only the list's owner (the notification's bare `from`; none means
    /// the own account) is updated. Applications that announce `urn:xmpp:omemo:2:devices+notify` /
    /// `eu.siacs.conversations.axolotl.devicelist+notify` (XEP-0115) get such pushes from their
    /// contacts; [`handle_message`](Self::handle_message) calls this too.
    pub fn handle_device_list_push(&self, message: &Message) -> ClientResult<bool> {
        let Some(event) = message
            .payloads
            .iter()
            .find(|p| p.is("event", NS_PUBSUB_EVENT))
        else {
            return Ok(false);
        };
        let Some(items) = event.get_child("items", NS_PUBSUB_EVENT) else {
            return Ok(false);
        };
        let node = items.attr("node").unwrap_or_default();
        let profiles = self.manager()?.config().profiles.clone();
        let Some(profile) = profiles.into_iter().find(|p| devices_node(*p) == node) else {
            return Ok(false);
        };
        let owner = message
            .from
            .as_ref()
            .map(|f| f.to_bare())
            .unwrap_or_else(|| self.own_bare());
        let list = device_list_in_event(items, profile)?;
        self.manager()?.apply_device_list(&bare(&owner), &list)?;
        self.mark_fresh(profile, bare(&owner))?;
        Ok(true)
    }

    /// Fetches the bundle of one device and builds a session with it.
    async fn build_session(&self, address: &DeviceAddress) -> ClientResult<()> {
        let jid = BareJid::new(&address.jid).map_err(|_| ClientError::Malformed("device JID"))?;
        let bundle = self
            .conn
            .bundle(&Jid::from(jid), address.device_id, address.profile)
            .await?;
        self.manager()?.add_bundle(address, &bundle)?;
        Ok(())
    }

    /// Refreshes the device lists of `to` and of the own account, and builds the missing sessions
    /// (devices whose bundle cannot be fetched are skipped and reported by the encryption).
    async fn prepare(&self, profile: Profile, to: &[BareJid]) -> ClientResult<Vec<String>> {
        let own = self.own_bare();
        let mut jids: Vec<String> = Vec::new();
        for jid in to.iter().chain(std::iter::once(&own)) {
            let s = bare(jid);
            if jids.contains(&s) {
                continue;
            }
            if !self.is_fresh(profile, &s)? {
                self.refresh_devices(profile, jid).await?;
            }
            jids.push(s);
        }
        let targets: Vec<&str> = jids.iter().map(String::as_str).collect();
        let missing = self.manager()?.missing_sessions(profile, &targets)?;
        for address in missing {
            if let Err(e) = self.build_session(&address).await {
                tracing::debug!(device = address.device_id, jid = %address.jid, error = %e,
                    "no session: bundle unavailable");
            }
        }
        jids.pop();
        Ok(jids)
    }

    /// Encrypts stanza content for `to` (and the own other devices): OMEMO:2 puts `content` in a
    /// XEP-0420 envelope; legacy OMEMO can only carry the text of the first `<body>`.
    pub async fn encrypt(
        &self,
        profile: Profile,
        to: &BareJid,
        content: Vec<Element>,
    ) -> ClientResult<Encryption> {
        let plaintext = match profile {
            Profile::Omemo2 => {
                Envelope::for_omemo(content, &self.own_bare(), &Jid::from(to.clone()))
                    .try_to_bytes()?
            }
            Profile::Legacy => content
                .iter()
                .find(|c| c.is("body", NS_CLIENT))
                .map(|b| b.text().into_bytes())
                .ok_or(ClientError::Malformed("legacy OMEMO carries a <body> only"))?,
        };
        let jids = self.prepare(profile, std::slice::from_ref(to)).await?;
        let targets: Vec<&str> = jids.iter().map(String::as_str).collect();
        let out = self.manager()?.encrypt(profile, &plaintext, &targets);
        // A signed prekey rotation may have come due: republish the bundle.
        self.run_actions().await;
        Ok(out?)
    }

    /// Key transport (XEP-0384 KeyTransportElement) for `to`'s devices and the own other devices:
    /// refreshes device lists and builds missing sessions like [`encrypt`](Self::encrypt), then
    /// encrypts the caller's key `material` without a payload (see
    /// [`OmemoManager::encrypt_key_transport`] for what each profile carries). Nothing is sent: the
    /// returned `<encrypted>` goes where the caller needs it (e.g. a JET `<security/>`, XEP-0396).
    pub async fn encrypt_key_transport(
        &self,
        profile: Profile,
        to: &BareJid,
        material: &[u8],
        iv: Option<&[u8]>,
    ) -> ClientResult<Encryption> {
        let jids = self.prepare(profile, std::slice::from_ref(to)).await?;
        let targets: Vec<&str> = jids.iter().map(String::as_str).collect();
        let out = self
            .manager()?
            .encrypt_key_transport(profile, material, iv, &targets);
        // A signed prekey rotation may have come due: republish the bundle.
        self.run_actions().await;
        Ok(out?)
    }

    /// Decrypts a key-transport `<encrypted>` element sent by `from` (found outside a message, e.g.
    /// in a JET `<security/>`) and returns the key material. The manager's follow-up actions
    /// (session completion, bundle republication) are performed before returning; their failures are
    /// logged. A replayed element is an error here ([`OmemoError::Replay`]).
    pub async fn decrypt_key_transport(
        &self,
        from: &BareJid,
        encrypted: &Encrypted,
    ) -> ClientResult<KeyTransport> {
        let result = self
            .manager()?
            .decrypt_key_transport(&bare(from), encrypted);
        self.run_actions().await;
        Ok(result?)
    }

    /// Sends an encrypted chat message with `text` to `to`. Returns who got a key and who did not.
    pub async fn send_chat(
        &self,
        to: &BareJid,
        profile: Profile,
        text: &str,
    ) -> ClientResult<Encryption> {
        let body = Element::builder("body", NS_CLIENT).append(text).build();
        let out = self.encrypt(profile, to, vec![body]).await?;
        // XEP-0420: no fallback body beside an SCE envelope (EME tells other clients); legacy OMEMO
        // clients expect one.
        let fallback = profile == Profile::Legacy;
        let stanza = message_stanza(Jid::from(to.clone()), &out.encrypted, fallback);
        self.conn.send_stanza(stanza.into()).await?;
        Ok(out)
    }

    /// Asks the server to copy this account's messages to this resource (XEP-0280 message carbons),
    /// so that own other devices see both sides of conversations and their OMEMO sessions with this
    /// device get answered.
    pub async fn enable_carbons(&self) -> ClientResult<()> {
        let enable = Element::builder("enable", NS_CARBONS).build();
        self.conn.send_iq(IqRequest::set(None, enable)).await?;
        Ok(())
    }

    /// Unwraps a XEP-0280 carbon copy. Carbons are accepted only from the own bare JID (anything else
    /// is a forgery and is refused).
    fn unwrap_carbon(&self, message: &Message) -> ClientResult<Option<Message>> {
        let Some(wrapper) = message
            .payloads
            .iter()
            .find(|p| p.ns() == NS_CARBONS && (p.name() == "sent" || p.name() == "received"))
        else {
            return Ok(None);
        };
        let own = self.own_bare();
        if message.from.as_ref().is_some_and(|f| *f != own) {
            return Err(ClientError::Malformed(
                "carbon copy not from the own account",
            ));
        }
        let inner = wrapper
            .get_child("forwarded", NS_FORWARD)
            .and_then(|f| f.get_child("message", NS_CLIENT))
            .ok_or(ClientError::Malformed(
                "carbon copy without a forwarded message",
            ))?;
        Message::try_from(inner.clone())
            .map(Some)
            .map_err(|_| ClientError::Malformed("forwarded message"))
    }

    /// Handles an incoming message (or a XEP-0280 carbon copy of one): `Ok(None)` when it carries no
    /// OMEMO element, is an empty message for another device, or is a duplicate of a message already
    /// decrypted (ignored silently, as XEP-0384
    /// requires; [`OmemoManager::decrypt`] itself reports it as [`OmemoError::Replay`]). The manager's follow-up actions are performed before returning (their network
    /// failures are logged, not returned, so they never hide the message).
    pub async fn handle_message(
        &self,
        message: &Message,
    ) -> ClientResult<Option<DecryptedMessage>> {
        if self.handle_device_list_push(message)? {
            return Ok(None);
        }
        let carbon = self.unwrap_carbon(message)?;
        let message = carbon.as_ref().unwrap_or(message);
        let Some(el) = find_encrypted(message) else {
            return Ok(None);
        };
        let encrypted = Encrypted::try_from(el).map_err(|e: ParseError| Error::Parse(e))?;
        let own = self.own_bare();
        let from = message.from.clone().unwrap_or_else(|| own.clone().into());
        let sender = from.to_bare();
        // The server delivered it to us, or (carbon) it was checked to come from our account: its
        // `to` is the recipient the envelope must name.
        let recipient: Jid = message
            .to
            .as_ref()
            .map(|t| t.to_bare().into())
            .unwrap_or_else(|| own.clone().into());
        let result = self.manager()?.decrypt(&bare(&sender), &encrypted);
        self.run_actions().await;
        let decrypted = match result {
            Ok(d) => d,
            // XEP-0384: a message received twice (a carbon and the original, a MAM replay) is
            // ignored without any warning.
            Err(ManagerError::Omemo(OmemoError::Replay(_))) => return Ok(None),
            // An empty message for another device of the account: nothing is lost here.
            Err(ManagerError::NotForThisDevice) if encrypted.payload.is_none() => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let (content, body) = match decrypted.plaintext {
            None => (Vec::new(), None),
            Some(bytes) => match encrypted.profile {
                Profile::Omemo2 => {
                    let envelope = Envelope::from_bytes(&bytes)?;
                    envelope.check(&sender, &recipient)?;
                    let body = envelope
                        .content
                        .iter()
                        .find(|c| c.name() == "body")
                        .map(Element::text);
                    (envelope.content, body)
                }
                Profile::Legacy => {
                    let text = String::from_utf8(bytes)
                        .map_err(|_| ClientError::Malformed("legacy body is not UTF-8"))?;
                    let el = Element::builder("body", NS_CLIENT)
                        .append(text.as_str())
                        .build();
                    (vec![el], Some(text))
                }
            },
        };
        Ok(Some(DecryptedMessage {
            from,
            profile: encrypted.profile,
            device_id: encrypted.sid,
            trust: decrypted.trust,
            content,
            body,
            new_session: decrypted.new_session,
        }))
    }

    /// Performs the manager's queued actions; failures are logged. A failed bundle republication is
    /// queued again (a rotated signed prekey must reach the server: the next call retries it); other
    /// failed actions are dropped (later traffic queues them again).
    pub async fn run_actions(&self) {
        let actions = match self.manager() {
            Ok(mut m) => m.take_actions(),
            Err(_) => return,
        };
        for action in actions {
            if let Err(e) = self.run_action(&action).await {
                tracing::warn!(?action, error = %e, "OMEMO follow-up failed");
                if matches!(action, Action::RepublishBundle(_)) {
                    if let Ok(mut m) = self.manager() {
                        m.requeue(action);
                    }
                }
            }
        }
    }

    /// Rotates the signed prekey if [`OmemoConfig::signed_prekey_rotation`] says it is due (and
    /// drops an expired previous one), then performs the queued actions, which republish the bundle.
    /// Returns whether it rotated. Encrypting and receiving check too; an application that may stay
    /// idle for longer than the rotation period calls this from a timer (see
    /// [`OmemoManager::next_signed_prekey_change`]).
    pub async fn rotate_signed_prekey_if_due(&self) -> ClientResult<bool> {
        let rotated = self.manager()?.rotate_signed_prekey_if_due()?;
        self.run_actions().await;
        Ok(rotated)
    }

    async fn run_action(&self, action: &Action) -> ClientResult<()> {
        match action {
            Action::RepublishBundle(profile) => self.publish_profile(*profile).await,
            Action::SendEmpty(address) => self.send_empty(address).await,
            Action::RebuildSession(address) => {
                self.build_session(address).await?;
                self.send_empty(address).await
            }
            Action::RefreshDeviceList { profile, jid } => {
                let jid = BareJid::new(jid).map_err(|_| ClientError::Malformed("device JID"))?;
                self.refresh_devices(*profile, &jid).await
            }
        }
    }

    /// Sends an empty OMEMO message to one device (key transport, heartbeat, session completion).
    pub async fn send_empty(&self, address: &DeviceAddress) -> ClientResult<()> {
        let jid = BareJid::new(&address.jid).map_err(|_| ClientError::Malformed("device JID"))?;
        let encrypted = self.manager()?.encrypt_empty(address)?;
        let stanza = message_stanza(Jid::from(jid), &encrypted, false);
        self.conn.send_stanza(stanza.into()).await?;
        Ok(())
    }

    /// Replaces a broken session (XEP-0384's manual session reset): a new session is built from the
    /// device's bundle and announced with an empty message.
    pub async fn reset_session(&self, address: &DeviceAddress) -> ClientResult<()> {
        self.manager()?.replace_session(address)?;
        self.build_session(address).await?;
        self.send_empty(address).await
    }
}
