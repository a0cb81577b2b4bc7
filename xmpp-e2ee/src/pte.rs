//! Pubsub targeted encryption: XEP-0477 (0.1.x, `urn:xmpp:pte:0`).
//!
//! One item of an otherwise public node is readable by chosen entities only: its payload is
//! encrypted with OMEMO:2 for their devices (and the publisher's other devices) and wrapped in
//! `<encrypted xmlns='urn:xmpp:pte:0' by='publisher' type='urn:xmpp:omemo:2'/>` ([`PteEncrypted`]).
//!
//! As in Libervia (the reference implementation), the OMEMO:2 plaintext is a XEP-0420 envelope
//! whose `<content/>` holds the item payload. This module also fills the envelope's `<to/>` with the
//! pubsub service (the XEP leaves it open; a message would name its recipient, a group chat its
//! room) and checks it on receipt, together with `<from/>` against `by`, so that a payload cannot be
//! moved to another service or claimed by another publisher unnoticed. Where the service exposes the
//! item's publisher, it must be `by` too.
//!
//! OMEMO gives forward secrecy: an item decrypts once per device, after which the message key is
//! gone (a second attempt is a replay). A reader must keep the plaintext: [`PlaintextStore`] is
//! where ([`MemoryPlaintextStore`], or with the `xmpp-pubsub-cache` feature the cache's decrypted
//! data, [`CachePlaintextStore`]), and [`read_item`] looks there before decrypting and keeps what it
//! decrypts. The publisher's own device cannot decrypt what it encrypted: [`publish_targeted`] keeps
//! the publisher's plaintext too.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use jid::{BareJid, Jid};
use minidom::Element;
use xmpp_social::pubsub::{Item, PubSubExt};
use xmpp_social::Connection;

use crate::omemo::DeviceAddress;
use crate::omemo::{
    ClientError, Encrypted, ManagerError, OmemoClient, OmemoPepExt, OmemoStore, Profile,
    SkipReason, TrustLevel,
};
use crate::sce::{Envelope, SceError};

/// XEP-0477 namespace (element and disco feature).
pub const NS_PTE: &str = "urn:xmpp:pte:0";
/// The encryption type this module speaks (XEP-0384 OMEMO:2).
pub const TYPE_OMEMO2: &str = "urn:xmpp:omemo:2";

/// Errors of targeted encryption.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PteError {
    /// The `<encrypted/>` wrapper or its content is malformed.
    #[error("malformed targeted item: {0}")]
    Malformed(String),
    /// The item is encrypted with an algorithm this module does not speak.
    #[error("unsupported targeted encryption type {0:?}")]
    UnsupportedType(String),
    /// The item's publisher (as the service says) is not the `by` of the wrapper.
    #[error("item published by {publisher} claims to be encrypted by {by}")]
    PublisherMismatch {
        /// The publisher the service gives.
        publisher: String,
        /// The `by` attribute.
        by: String,
    },
    /// The OMEMO layer refused (tampered, replayed: already decrypted once, untrusted...).
    #[error(transparent)]
    Omemo(#[from] ClientError),
    /// The envelope is malformed or names another sender or service.
    #[error(transparent)]
    Sce(#[from] SceError),
    /// The network or the server failed.
    #[error(transparent)]
    Xmpp(#[from] xmpp_social::Error),
    /// The plaintext store failed.
    #[error("plaintext store: {0}")]
    Store(String),
}

impl From<ManagerError> for PteError {
    fn from(e: ManagerError) -> Self {
        PteError::Omemo(ClientError::Manager(e))
    }
}

/// The XEP-0477 `<encrypted/>` wrapper.
#[derive(Debug, Clone, PartialEq)]
pub struct PteEncrypted {
    /// The publisher's bare JID (`by`).
    pub by: BareJid,
    /// The algorithm's namespace (`type`).
    pub kind: String,
    /// The algorithm's element (an OMEMO `<encrypted/>`).
    pub inner: Element,
}

impl PteEncrypted {
    /// Whether `payload` is a targeted-encryption wrapper (whether or not it is well-formed).
    pub fn is_pte(payload: &Element) -> bool {
        payload.is("encrypted", NS_PTE)
    }
}

impl TryFrom<&Element> for PteEncrypted {
    type Error = PteError;

    fn try_from(el: &Element) -> Result<Self, PteError> {
        if !el.is("encrypted", NS_PTE) {
            return Err(PteError::Malformed(format!(
                "expected {{{NS_PTE}}}encrypted, found {{{}}}{}",
                el.ns(),
                el.name()
            )));
        }
        let by = el
            .attr("by")
            .ok_or_else(|| PteError::Malformed("no 'by'".into()))?;
        let by = BareJid::new(by).map_err(|e| PteError::Malformed(format!("'by' {by:?}: {e}")))?;
        let kind = el
            .attr("type")
            .ok_or_else(|| PteError::Malformed("no 'type'".into()))?
            .to_owned();
        let mut children = el.children();
        let inner = children
            .next()
            .ok_or_else(|| PteError::Malformed("no encrypted content".into()))?
            .clone();
        if children.next().is_some() {
            return Err(PteError::Malformed("more than one child".into()));
        }
        Ok(PteEncrypted { by, kind, inner })
    }
}

impl From<&PteEncrypted> for Element {
    fn from(p: &PteEncrypted) -> Element {
        Element::builder("encrypted", NS_PTE)
            .attr(minidom::rxml::xml_ncname!("by").to_owned(), p.by.as_str())
            .attr(
                minidom::rxml::xml_ncname!("type").to_owned(),
                p.kind.as_str(),
            )
            .append(p.inner.clone())
            .build()
    }
}

/// A targeted item ready to publish.
#[derive(Debug, Clone)]
pub struct TargetedPayload {
    /// The `<encrypted xmlns='urn:xmpp:pte:0'/>` payload.
    pub element: Element,
    /// The devices that got a key.
    pub recipients: Vec<DeviceAddress>,
    /// The devices left out, and why.
    pub skipped: Vec<(DeviceAddress, SkipReason)>,
}

/// A decrypted targeted item.
#[derive(Debug, Clone, PartialEq)]
pub struct DecryptedItem {
    /// The plaintext payload.
    pub payload: Element,
    /// Its publisher (`by`, checked).
    pub by: BareJid,
    /// The sending device and the trust in it; `None` when the plaintext came from a
    /// [`PlaintextStore`].
    pub device: Option<(u32, TrustLevel)>,
}

/// What reading an item gave.
#[derive(Debug, Clone, PartialEq)]
pub enum PteRead {
    /// The item is not a targeted item (public, or no payload): nothing to decrypt.
    NotEncrypted,
    /// The item was for this device, here is its plaintext.
    Decrypted(DecryptedItem),
    /// The item is targeted at other entities (no key for this device).
    NotForUs {
        /// Its publisher.
        by: BareJid,
    },
}

/// Where readers keep decrypted targeted items (OMEMO decrypts each item only once).
pub trait PlaintextStore: Send + Sync {
    /// The kept plaintext of an item, if any.
    fn load(
        &self,
        service: &BareJid,
        node: &str,
        item_id: &str,
    ) -> Result<Option<Element>, PteError>;
    /// Keeps the plaintext of `item` (the item as the service gave it, ciphertext included).
    fn keep(
        &self,
        service: &BareJid,
        node: &str,
        item: &Item,
        plaintext: &Element,
    ) -> Result<(), PteError>;
}

/// (service, node, item id).
type ItemKey = (String, String, String);

/// A [`PlaintextStore`] in memory (bounded: the oldest entries go first past `capacity`).
#[derive(Debug)]
pub struct MemoryPlaintextStore {
    capacity: usize,
    inner: Mutex<(HashMap<ItemKey, Element>, VecDeque<ItemKey>)>,
}

impl MemoryPlaintextStore {
    /// A store keeping at most `capacity` items.
    pub fn new(capacity: usize) -> Self {
        MemoryPlaintextStore {
            capacity: capacity.max(1),
            inner: Mutex::new((HashMap::new(), VecDeque::new())),
        }
    }
}

impl PlaintextStore for MemoryPlaintextStore {
    fn load(
        &self,
        service: &BareJid,
        node: &str,
        item_id: &str,
    ) -> Result<Option<Element>, PteError> {
        let g = self
            .inner
            .lock()
            .map_err(|_| PteError::Store("lock poisoned".into()))?;
        Ok(g.0
            .get(&(service.to_string(), node.to_owned(), item_id.to_owned()))
            .cloned())
    }

    fn keep(
        &self,
        service: &BareJid,
        node: &str,
        item: &Item,
        plaintext: &Element,
    ) -> Result<(), PteError> {
        let mut g = self
            .inner
            .lock()
            .map_err(|_| PteError::Store("lock poisoned".into()))?;
        let key = (service.to_string(), node.to_owned(), item.id.clone());
        if g.0.insert(key.clone(), plaintext.clone()).is_none() {
            g.1.push_back(key);
        }
        while g.1.len() > self.capacity {
            if let Some(old) = g.1.pop_front() {
                g.0.remove(&old);
            }
        }
        Ok(())
    }
}

/// The pubsub cache's decrypted-data API as a [`PlaintextStore`]: the item is stored (as an
/// encrypted item) and its plaintext next to it, analysed and indexed for search.
#[cfg(feature = "xmpp-pubsub-cache")]
#[derive(Clone)]
pub struct CachePlaintextStore {
    cache: std::sync::Arc<xmpp_pubsub_cache::Cache>,
    profile: String,
}

#[cfg(feature = "xmpp-pubsub-cache")]
impl CachePlaintextStore {
    /// The store over `cache`, for the account `profile` (the cache's profile, usually the bare
    /// JID).
    pub fn new(
        cache: std::sync::Arc<xmpp_pubsub_cache::Cache>,
        profile: impl Into<String>,
    ) -> Self {
        CachePlaintextStore {
            cache,
            profile: profile.into(),
        }
    }

    fn key(&self, service: &BareJid, node: &str) -> xmpp_pubsub_cache::NodeKey {
        xmpp_pubsub_cache::NodeKey::new(self.profile.clone(), service.to_string(), node)
    }
}

#[cfg(feature = "xmpp-pubsub-cache")]
impl PlaintextStore for CachePlaintextStore {
    fn load(
        &self,
        service: &BareJid,
        node: &str,
        item_id: &str,
    ) -> Result<Option<Element>, PteError> {
        let item = self
            .cache
            .item(&self.key(service, node), item_id)
            .map_err(|e| PteError::Store(e.to_string()))?;
        match item.and_then(|i| i.plain_xml) {
            None => Ok(None),
            Some(xml) => xmpp_social::xml::parse_bounded(&xml, 10 * 1024 * 1024)
                .map(Some)
                .map_err(|e| PteError::Store(format!("kept plaintext: {e}"))),
        }
    }

    fn keep(
        &self,
        service: &BareJid,
        node: &str,
        item: &Item,
        plaintext: &Element,
    ) -> Result<(), PteError> {
        let key = self.key(service, node);
        let now = chrono::Utc::now().timestamp_micros();
        if self
            .cache
            .item(&key, &item.id)
            .map_err(|e| PteError::Store(e.to_string()))?
            .is_none()
        {
            self.cache
                .put_items(&key, std::slice::from_ref(item), now)
                .map_err(|e| PteError::Store(e.to_string()))?;
        }
        self.cache
            .store_decrypted(&key, &item.id, plaintext, false)
            .map_err(|e| PteError::Store(e.to_string()))
    }
}

/// Fetches device lists and missing sessions for `jids` (and the own account).
async fn prepare<C: Connection, S: OmemoStore + Send + 'static>(
    client: &OmemoClient<C, S>,
    jids: &[BareJid],
) -> Result<(), PteError> {
    let profile = Profile::Omemo2;
    let own = client.connection().jid().to_bare();
    let mut seen: Vec<&BareJid> = Vec::new();
    for jid in jids.iter().chain(std::iter::once(&own)) {
        if seen.contains(&jid) {
            continue;
        }
        seen.push(jid);
        client.refresh_devices(profile, jid).await?;
    }
    let names: Vec<String> = jids.iter().map(|j| j.to_string()).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let missing = client
        .manager()?
        .missing_sessions(profile, &refs)
        .map_err(ClientError::from)?;
    for address in missing {
        let Ok(jid) = BareJid::new(&address.jid) else {
            continue;
        };
        match client
            .connection()
            .bundle(&Jid::from(jid), address.device_id, profile)
            .await
        {
            Ok(bundle) => client
                .manager()?
                .add_bundle(&address, &bundle)
                .map_err(ClientError::from)?,
            Err(e) => tracing::debug!(device = address.device_id, jid = %address.jid, error = %e,
                "no session: bundle unavailable"),
        }
    }
    Ok(())
}

/// Encrypts `payload` for `targets` (and the publisher's other devices) as an item of `service`.
pub async fn encrypt_payload<C: Connection, S: OmemoStore + Send + 'static>(
    client: &OmemoClient<C, S>,
    service: &BareJid,
    payload: Element,
    targets: &[BareJid],
) -> Result<TargetedPayload, PteError> {
    if targets.is_empty() {
        return Err(PteError::Malformed("no target".into()));
    }
    prepare(client, targets).await?;
    let own = client.connection().jid().to_bare();
    let plaintext =
        Envelope::for_omemo(vec![payload], &own, &Jid::from(service.clone())).try_to_bytes()?;
    let names: Vec<String> = targets.iter().map(|j| j.to_string()).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let out = client
        .manager()?
        .encrypt(Profile::Omemo2, &plaintext, &refs)
        .map_err(ClientError::from)?;
    let wrapper = PteEncrypted {
        by: own,
        kind: TYPE_OMEMO2.to_owned(),
        inner: Element::from(&out.encrypted),
    };
    Ok(TargetedPayload {
        element: Element::from(&wrapper),
        recipients: out.recipients,
        skipped: out.skipped,
    })
}

/// Publishes `payload` as item `id` of `node` on `service` (`None`: the own PEP service),
/// readable by `targets` only; the publisher's plaintext goes to `keep` (its own device cannot
/// decrypt it later). Returns the item id and the encryption report.
pub async fn publish_targeted<C: Connection, S: OmemoStore + Send + 'static>(
    client: &OmemoClient<C, S>,
    service: Option<&Jid>,
    node: &str,
    id: Option<&str>,
    payload: Element,
    targets: &[BareJid],
    keep: Option<&dyn PlaintextStore>,
) -> Result<(String, TargetedPayload), PteError> {
    let conn = client.connection();
    let service_bare = service
        .map(|s| s.to_bare())
        .unwrap_or_else(|| conn.jid().to_bare());
    let targeted = encrypt_payload(client, &service_bare, payload.clone(), targets).await?;
    let item_id = conn
        .publish(service, node, id, targeted.element.clone(), None)
        .await?;
    if let Some(store) = keep {
        let item = Item {
            id: item_id.clone(),
            publisher: Some(Jid::from(conn.jid().to_bare())),
            payload: Some(targeted.element.clone()),
        };
        store.keep(&service_bare, node, &item, &payload)?;
    }
    Ok((item_id, targeted))
}

/// Decrypts a targeted item of `service` for this device. Does not keep the plaintext: see
/// [`read_item`].
pub async fn decrypt_item<C: Connection, S: OmemoStore + Send + 'static>(
    client: &OmemoClient<C, S>,
    service: &BareJid,
    item: &Item,
) -> Result<PteRead, PteError> {
    let Some(payload) = item.payload.as_ref().filter(|p| PteEncrypted::is_pte(p)) else {
        return Ok(PteRead::NotEncrypted);
    };
    let wrapper = PteEncrypted::try_from(payload)?;
    if wrapper.kind != TYPE_OMEMO2 {
        return Err(PteError::UnsupportedType(wrapper.kind));
    }
    if let Some(publisher) = &item.publisher {
        if publisher.to_bare() != wrapper.by {
            return Err(PteError::PublisherMismatch {
                publisher: publisher.to_string(),
                by: wrapper.by.to_string(),
            });
        }
    }
    let encrypted = Encrypted::try_from(&wrapper.inner)
        .map_err(|e| PteError::Malformed(format!("OMEMO element: {e}")))?;
    if encrypted.profile != Profile::Omemo2 {
        return Err(PteError::UnsupportedType(
            encrypted.profile.namespace().to_owned(),
        ));
    }
    let result = client.manager()?.decrypt(wrapper.by.as_str(), &encrypted);
    client.run_actions().await;
    let decrypted = match result {
        Ok(d) => d,
        Err(ManagerError::NotForThisDevice) => {
            return Ok(PteRead::NotForUs { by: wrapper.by });
        }
        Err(e) => return Err(e.into()),
    };
    let bytes = decrypted
        .plaintext
        .ok_or_else(|| PteError::Malformed("key transport without payload".into()))?;
    let envelope = Envelope::from_bytes(&bytes)?;
    envelope.check_groupchat(&wrapper.by, service)?;
    let mut content = envelope.content.into_iter();
    let payload = content
        .next()
        .ok_or_else(|| PteError::Malformed("empty envelope".into()))?;
    if content.next().is_some() {
        return Err(PteError::Malformed("more than one payload".into()));
    }
    Ok(PteRead::Decrypted(DecryptedItem {
        payload,
        by: wrapper.by,
        device: Some((encrypted.sid, decrypted.trust)),
    }))
}

/// Reads an item of `node` on `service`: the kept plaintext when `store` has it, otherwise
/// decrypts it (when it is for this device) and keeps the plaintext in `store`.
pub async fn read_item<C: Connection, S: OmemoStore + Send + 'static>(
    client: &OmemoClient<C, S>,
    store: &dyn PlaintextStore,
    service: &BareJid,
    node: &str,
    item: &Item,
) -> Result<PteRead, PteError> {
    let Some(payload) = item.payload.as_ref().filter(|p| PteEncrypted::is_pte(p)) else {
        return Ok(PteRead::NotEncrypted);
    };
    if let Some(kept) = store.load(service, node, &item.id)? {
        let by = PteEncrypted::try_from(payload)?.by;
        return Ok(PteRead::Decrypted(DecryptedItem {
            payload: kept,
            by,
            device: None,
        }));
    }
    let read = decrypt_item(client, service, item).await?;
    if let PteRead::Decrypted(d) = &read {
        store.keep(service, node, item, &d.payload)?;
    }
    Ok(read)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// XEP-0477 Example 1 (the item payload).
    const EXAMPLE: &str = r#"<encrypted xmlns="urn:xmpp:pte:0" by="juliet@capulet.lit" type="urn:xmpp:omemo:2">
      <encrypted xmlns="urn:xmpp:omemo:2">
        <header sid="878841001">
          <keys jid="juliet@capulet.lit">
            <key rid="673880319">ChDRqSBLTR+RtRIH8io7kf22EmgIARACGiCasIYfB6Zfe5SNyT8twIa+mEYA8h7uEQIjQ64dJx4vXiJAZSpXPRW+sVVSC7gc4lDEiTA4DT7AIh/woa82PFjgFdL0A8HTyBe7yh3UWThZGuTp5A3zmjXH7pAwKX85oxQ8XA==</key>
          </keys>
        </header>
        <payload>DWmAVvrKlPPh23OmvmIrJmQXj5hVtgAnY8IOGZNqJc59T93hzsTen7tw7Kea5KfM3btfS25xd6RRWe0ZrqdvdGtKfHJFc77k5pQ052br4Qxw9kLWCVGqpNkrpwoBUshqs5mwA1WRLGdUfEsMaePwZv4m9xvXZSrxNIf9vQNX</payload>
      </encrypted>
    </encrypted>"#;

    #[test]
    fn xep0477_example_round_trip() {
        let el: Element = EXAMPLE.parse().unwrap();
        let p = PteEncrypted::try_from(&el).unwrap();
        assert_eq!(p.by.as_str(), "juliet@capulet.lit");
        assert_eq!(p.kind, TYPE_OMEMO2);
        let omemo = Encrypted::try_from(&p.inner).unwrap();
        assert_eq!(omemo.sid, 878841001);
        let again = PteEncrypted::try_from(&Element::from(&p)).unwrap();
        assert_eq!(again, p);
    }

    #[test]
    fn malformed_wrappers_are_typed_errors() {
        for bad in [
            "<encrypted xmlns='urn:xmpp:pte:0' type='urn:xmpp:omemo:2'><x xmlns='y'/></encrypted>",
            "<encrypted xmlns='urn:xmpp:pte:0' by='a@b'><x xmlns='y'/></encrypted>",
            "<encrypted xmlns='urn:xmpp:pte:0' by='@@' type='t'><x xmlns='y'/></encrypted>",
            "<encrypted xmlns='urn:xmpp:pte:0' by='a@b' type='t'/>",
            "<encrypted xmlns='urn:xmpp:pte:0' by='a@b' type='t'><x xmlns='y'/><x xmlns='y'/></encrypted>",
            "<encrypted xmlns='urn:xmpp:other' by='a@b' type='t'><x xmlns='y'/></encrypted>",
        ] {
            let el: Element = bad.parse().unwrap();
            assert!(
                matches!(PteEncrypted::try_from(&el), Err(PteError::Malformed(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn memory_store_is_bounded() {
        let s = MemoryPlaintextStore::new(2);
        let svc = BareJid::new("pubsub.example").unwrap();
        let p = Element::builder("x", "y").build();
        for id in ["a", "b", "c"] {
            let item = Item {
                id: id.into(),
                publisher: None,
                payload: None,
            };
            s.keep(&svc, "n", &item, &p).unwrap();
        }
        assert!(s.load(&svc, "n", "a").unwrap().is_none());
        assert!(s.load(&svc, "n", "c").unwrap().is_some());
    }
}
