//! [`OxClient`]: OX (XEP-0373/0374) and OpenPGP for pubsub (XEP-0473) over any [`Connection`].
//!
//! It keeps the own key and the known public keys in an [`OxStore`], publishes and fetches keys on
//! PEP, sends XEP-0374 messages (`<signcrypt/>` with the XEP-0380/0334 hints and a plaintext
//! explanation), opens received `<openpgp/>` elements with the checks of [`super::core`], and applies
//! received XEP-0473 secrets and revocations. The state sits behind a `std::sync::Mutex` never held
//! across an `.await`.

use std::sync::{Arc, Mutex, MutexGuard};

use chrono::Utc;
use jid::{BareJid, Jid};
use minidom::Element;
use xmpp_parsers::message::{Lang, Message};
use xmpp_social::pubsub::{
    AccessModel, Affiliation, AffiliationEntry, Item, NodeConfig, PreconditionPolicy, PubSubExt,
    PublishOptions,
};
use xmpp_social::Connection;

use super::backup::{self, BackupCode};
use super::core::{self, Checks};
use super::error::OxError;
use super::pep::OxPepExt;
use super::pgp::{PublicKey, SecretKey};
use super::pubsub::{Accepted, EncryptedItem, NodeSecrets, Revoke, SharedSecret};
use super::store::OxStore;
use super::xml::{Content, ContentKind, OpenPgp};
use super::{NS_OX, NS_OX_PUBSUB};

/// XEP-0380 namespace.
const NS_EME: &str = "urn:xmpp:eme:0";
/// XEP-0334 namespace.
const NS_HINTS: &str = "urn:xmpp:hints";
const NS_CLIENT: &str = "jabber:client";
const NS_SERVER: &str = "jabber:server";

/// The plaintext body XEP-0374 §3.2 asks for beside `<openpgp/>`.
pub const FALLBACK_BODY: &str = "This message is encrypted using OpenPGP (OX, XEP-0374).";

/// A received and verified OX message.
#[derive(Debug, Clone, PartialEq)]
pub struct OxMessage {
    /// The stanza's sender.
    pub from: Jid,
    /// The verified content element.
    pub content: Content,
    /// The fingerprint of the key that signed it (`None` for `<crypt/>`).
    pub signer: Option<String>,
    /// The text of the first `<body/>` of the payload (`jabber:client` or `jabber:server`).
    pub body: Option<String>,
    /// XEP-0473 secrets and revocations applied from this message, per node.
    pub secrets: Vec<(BareJid, String, Accepted)>,
}

struct State<S> {
    store: S,
    key: SecretKey,
}

/// OX over a [`Connection`]; cheap to clone when the connection is.
pub struct OxClient<C, S: OxStore> {
    conn: C,
    state: Arc<Mutex<State<S>>>,
    checks: Checks,
}

impl<C: Clone, S: OxStore> Clone for OxClient<C, S> {
    fn clone(&self) -> Self {
        OxClient {
            conn: self.conn.clone(),
            state: Arc::clone(&self.state),
            checks: self.checks,
        }
    }
}

impl<C, S: OxStore> std::fmt::Debug for OxClient<C, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OxClient")
            .field("checks", &self.checks)
            .finish_non_exhaustive()
    }
}

fn store_err(e: impl std::fmt::Display) -> OxError {
    OxError::Store(e.to_string())
}

/// Publish-options XEP-0473 recommends for an encrypted node: whitelist access.
pub fn encrypted_node_options() -> PublishOptions {
    PublishOptions::new(
        NodeConfig::new().access_model(AccessModel::Whitelist),
        PreconditionPolicy::ReconfigureNode,
    )
}

impl<C: Connection, S: OxStore + Send + 'static> OxClient<C, S> {
    /// Opens the account's OX state in `store`, generating a key (v4 Cv25519, user id
    /// `xmpp:<bare jid>`) when there is none.
    pub fn new(conn: C, mut store: S) -> Result<Self, OxError> {
        let own = conn.jid().to_bare().to_string();
        let key = match store.load_own_key().map_err(store_err)? {
            Some(k) => k,
            None => {
                let k = SecretKey::generate(&own)?;
                store.store_own_key(&k).map_err(store_err)?;
                k
            }
        };
        Ok(OxClient {
            conn,
            state: Arc::new(Mutex::new(State { store, key })),
            checks: Checks::default(),
        })
    }

    /// Replaces the receipt checks.
    pub fn with_checks(mut self, checks: Checks) -> Self {
        self.checks = checks;
        self
    }

    /// The connection.
    pub fn connection(&self) -> &C {
        &self.conn
    }

    fn state(&self) -> Result<MutexGuard<'_, State<S>>, OxError> {
        self.state.lock().map_err(|_| OxError::Poisoned)
    }

    fn own_bare(&self) -> BareJid {
        self.conn.jid().to_bare()
    }

    /// The own key (secret: don't log it).
    pub fn secret_key(&self) -> Result<SecretKey, OxError> {
        Ok(self.state()?.key.clone())
    }

    /// The own public key.
    pub fn public_key(&self) -> Result<PublicKey, OxError> {
        Ok(self.state()?.key.public())
    }

    /// Publishes the own public key (data node and metadata node, open access).
    pub async fn publish_key(&self) -> Result<(), OxError> {
        let key = self.public_key()?;
        self.conn.publish_public_key(&key).await?;
        Ok(())
    }

    /// The known public keys of `jid`.
    pub fn known_keys(&self, jid: &BareJid) -> Result<Vec<PublicKey>, OxError> {
        self.state()?
            .store
            .load_public_keys(&jid.to_string())
            .map_err(store_err)
    }

    /// Fetches `jid`'s announced keys from PEP and stores them as its known keys.
    pub async fn fetch_keys(&self, jid: &BareJid) -> Result<Vec<PublicKey>, OxError> {
        let peer = Jid::from(jid.clone());
        let own = *jid == self.own_bare();
        let keys = self
            .conn
            .public_keys(if own { None } else { Some(&peer) })
            .await?;
        self.state()?
            .store
            .store_public_keys(&jid.to_string(), &keys)
            .map_err(store_err)?;
        Ok(keys)
    }

    async fn keys_of(&self, jid: &BareJid) -> Result<Vec<PublicKey>, OxError> {
        let known = self.known_keys(jid)?;
        if !known.is_empty() {
            return Ok(known);
        }
        self.fetch_keys(jid).await
    }

    /// Encrypts the secret key with a new backup code, stores it on the private PEP node and returns
    /// the code (show it to the user once).
    pub async fn backup_secret_key(&self) -> Result<BackupCode, OxError> {
        let code = BackupCode::generate();
        let key = self.secret_key()?;
        let backup = backup::encrypt_backup(&[&key], &code)?;
        self.conn.publish_secret_key_backup(&backup).await?;
        Ok(code)
    }

    /// Restores the secret key from the PEP backup with its code; the first key of the backup that
    /// carries this account's user id becomes the own key. Nothing changes on error.
    pub async fn restore_secret_key(&self, code: &BackupCode) -> Result<SecretKey, OxError> {
        let backup = self
            .conn
            .secret_key_backup()
            .await?
            .ok_or_else(|| OxError::NoKey("no secret key backup on PEP".to_owned()))?;
        let own = self.own_bare().to_string();
        let keys = backup::decrypt_backup(&backup, code)?;
        let key = keys
            .into_iter()
            .find(|k| k.has_jid(&own))
            .ok_or(OxError::UserIdMismatch { jid: own })?;
        let mut st = self.state()?;
        st.store.store_own_key(&key).map_err(store_err)?;
        st.key = key.clone();
        Ok(key)
    }

    /// Seals `payload` in a `<signcrypt/>` for `to` (and the own account), fetching unknown keys.
    pub async fn signcrypt(
        &self,
        to: &[BareJid],
        payload: Vec<Element>,
    ) -> Result<OpenPgp, OxError> {
        let mut keys = Vec::new();
        for jid in to {
            keys.extend(self.keys_of(jid).await?);
        }
        let content = Content::new(ContentKind::Signcrypt, to.to_vec(), payload);
        let key = self.secret_key()?;
        let refs: Vec<&PublicKey> = keys.iter().collect();
        core::seal(&content, &key, &refs)
    }

    /// Builds a XEP-0374 chat message carrying `openpgp` with the hints (store, EME, fallback body).
    pub fn message_stanza(to: Jid, openpgp: &OpenPgp) -> Message {
        let mut message = Message::chat(Some(to)).with_payloads(vec![
            Element::builder("store", NS_HINTS).build(),
            Element::builder("encryption", NS_EME)
                .attr(xmpp_social::xml::nc("namespace"), NS_OX)
                .build(),
            openpgp.to_element(),
        ]);
        message
            .bodies
            .insert(Lang::default(), FALLBACK_BODY.to_owned());
        message
    }

    /// Sends `payload` signcrypted to `to` in a chat message.
    pub async fn send(&self, to: &BareJid, payload: Vec<Element>) -> Result<(), OxError> {
        let openpgp = self.signcrypt(std::slice::from_ref(to), payload).await?;
        let stanza = Self::message_stanza(Jid::from(to.clone()), &openpgp);
        self.conn.send_stanza(stanza.into()).await?;
        Ok(())
    }

    /// Sends a XEP-0374 chat message with `text`.
    pub async fn send_chat(&self, to: &BareJid, text: &str) -> Result<(), OxError> {
        let body = Element::builder("body", NS_CLIENT).append(text).build();
        self.send(to, vec![body]).await
    }

    fn open(
        &self,
        openpgp: &OpenPgp,
        sender: &BareJid,
        recipient: &BareJid,
        keys: &[PublicKey],
    ) -> Result<core::Verified, OxError> {
        let own = self.secret_key()?;
        let refs: Vec<&PublicKey> = keys.iter().collect();
        core::open_element(
            openpgp,
            &own,
            sender,
            &refs,
            recipient,
            &self.checks,
            Utc::now(),
        )
    }

    /// Handles an incoming message: `Ok(None)` when it has no `<openpgp/>`. The sender's keys are
    /// fetched from PEP when none is known or when the signature is by a key not known yet. XEP-0473
    /// secrets and revocations in the payload are applied (all or nothing per node; a refused one
    /// makes the whole message an error and changes nothing).
    pub async fn handle_message(&self, message: &Message) -> Result<Option<OxMessage>, OxError> {
        let Some(el) = message.payloads.iter().find(|p| p.is("openpgp", NS_OX)) else {
            return Ok(None);
        };
        let openpgp = OpenPgp::from_element(el)?;
        let own = self.own_bare();
        let from = message.from.clone().unwrap_or_else(|| own.clone().into());
        let sender = from.to_bare();
        let recipient = message
            .to
            .as_ref()
            .map(|t| t.to_bare())
            .unwrap_or_else(|| own.clone());
        let known = self.known_keys(&sender)?;
        let verified = match self.open(&openpgp, &sender, &recipient, &known) {
            Ok(v) => v,
            Err(OxError::UnknownSigner { .. }) => {
                let fresh = self.fetch_keys(&sender).await?;
                self.open(&openpgp, &sender, &recipient, &fresh)?
            }
            Err(e) => return Err(e),
        };
        // XEP-0473 secrets travel in <signcrypt/> only.
        let secrets = if verified.content.kind == ContentKind::Signcrypt {
            self.apply_secrets(&sender, &verified.content.payload)?
        } else {
            Vec::new()
        };
        let body = verified
            .content
            .payload
            .iter()
            .find(|c| c.is("body", NS_CLIENT) || c.is("body", NS_SERVER))
            .map(Element::text);
        Ok(Some(OxMessage {
            from,
            content: verified.content,
            signer: verified.signer,
            body,
            secrets,
        }))
    }

    fn apply_secrets(
        &self,
        sender: &BareJid,
        payload: &[Element],
    ) -> Result<Vec<(BareJid, String, Accepted)>, OxError> {
        let mut secrets: Vec<SharedSecret> = Vec::new();
        let mut revokes: Vec<Revoke> = Vec::new();
        for el in payload.iter().filter(|e| e.ns() == NS_OX_PUBSUB) {
            match el.name() {
                "shared-secret" => secrets.push(SharedSecret::from_element(el)?),
                "revoke" => revokes.push(Revoke::from_element(el)?),
                _ => {}
            }
        }
        let mut nodes: Vec<(BareJid, String)> = Vec::new();
        for (service, node) in secrets
            .iter()
            .map(|s| (&s.service, &s.node))
            .chain(revokes.iter().map(|r| (&r.service, &r.node)))
        {
            if !nodes.iter().any(|(s, n)| s == service && n == node) {
                nodes.push((service.clone(), node.clone()));
            }
        }
        let mut st = self.state()?;
        // Check every node first so that a refused one changes nothing.
        let mut updated = Vec::new();
        for (service, node) in &nodes {
            let mut state = st
                .store
                .load_node_secrets(&service.to_string(), node)
                .map_err(store_err)?
                .unwrap_or_else(|| NodeSecrets::new(service.clone(), node));
            let s: Vec<SharedSecret> = secrets
                .iter()
                .filter(|x| x.service == *service && x.node == *node)
                .cloned()
                .collect();
            let r: Vec<Revoke> = revokes
                .iter()
                .filter(|x| x.service == *service && x.node == *node)
                .cloned()
                .collect();
            let accepted = state.accept(sender, &s, &r)?;
            updated.push((state, accepted));
        }
        let mut out = Vec::new();
        for (state, accepted) in updated {
            st.store.store_node_secrets(&state).map_err(store_err)?;
            out.push((state.service.clone(), state.node.clone(), accepted));
        }
        Ok(out)
    }

    fn service_of(&self, service: Option<&Jid>) -> BareJid {
        service
            .map(|s| s.to_bare())
            .unwrap_or_else(|| self.own_bare())
    }

    /// The secrets known for a node.
    pub fn node_secrets(
        &self,
        service: Option<&Jid>,
        node: &str,
    ) -> Result<Option<NodeSecrets>, OxError> {
        let service = self.service_of(service);
        self.state()?
            .store
            .load_node_secrets(&service.to_string(), node)
            .map_err(store_err)
    }

    fn load_or_new(&self, service: &BareJid, node: &str) -> Result<NodeSecrets, OxError> {
        Ok(self
            .state()?
            .store
            .load_node_secrets(&service.to_string(), node)
            .map_err(store_err)?
            .unwrap_or_else(|| NodeSecrets::new(service.clone(), node)))
    }

    async fn send_secret_payload(
        &self,
        to: &BareJid,
        payload: Vec<Element>,
    ) -> Result<(), OxError> {
        let openpgp = self.signcrypt(std::slice::from_ref(to), payload).await?;
        let stanza = Message::normal(Some(Jid::from(to.clone()))).with_payloads(vec![
            Element::builder("store", NS_HINTS).build(),
            openpgp.to_element(),
        ]);
        self.conn.send_stanza(stanza.into()).await?;
        Ok(())
    }

    /// Creates a new shared secret for a node (this account becomes its signer) and sends it to the
    /// own account (other devices). The previous current secret, if any, is revoked first.
    pub async fn new_node_secret(
        &self,
        service: Option<&Jid>,
        node: &str,
        payload_type: Option<&str>,
    ) -> Result<SharedSecret, OxError> {
        let service = self.service_of(service);
        let me = self.own_bare();
        let mut state = self.load_or_new(&service, node)?;
        let revoke = state.revoke_current(None);
        let secret = state.create(&me, payload_type)?;
        self.state()?
            .store
            .store_node_secrets(&state)
            .map_err(store_err)?;
        let mut payload: Vec<Element> = revoke.iter().map(Revoke::to_element).collect();
        payload.push(secret.to_element());
        self.send_secret_payload(&me, payload).await?;
        Ok(secret)
    }

    /// Gives readers access: sends each all the node's secrets (the old ones marked revoked, so they
    /// read the archive).
    pub async fn share_node(
        &self,
        service: Option<&Jid>,
        node: &str,
        readers: &[BareJid],
    ) -> Result<(), OxError> {
        let state = self
            .node_secrets(service, node)?
            .ok_or_else(|| OxError::UnknownSecret {
                node: node.to_owned(),
                id: "(none)".to_owned(),
            })?;
        let payload: Vec<Element> = state
            .for_newcomer()
            .iter()
            .map(SharedSecret::to_element)
            .collect();
        for reader in readers {
            self.send_secret_payload(reader, payload.clone()).await?;
        }
        Ok(())
    }

    /// Rotates a node's secret: revokes the current one, creates a new one, tells `revoked` readers
    /// about the revocation only, and sends the revocation and the new secret to `readers` and the
    /// own account.
    pub async fn rotate_node_secret(
        &self,
        service: Option<&Jid>,
        node: &str,
        readers: &[BareJid],
        revoked: &[BareJid],
        reason: Option<&str>,
    ) -> Result<SharedSecret, OxError> {
        let service_b = self.service_of(service);
        let me = self.own_bare();
        let mut state = self.load_or_new(&service_b, node)?;
        let revoke = state.revoke_current(reason);
        let payload_type = state
            .current()
            .and_then(|s| s.payload_type.clone())
            .or_else(|| state.secrets.last().and_then(|s| s.payload_type.clone()));
        let secret = state.create(&me, payload_type.as_deref())?;
        self.state()?
            .store
            .store_node_secrets(&state)
            .map_err(store_err)?;
        let revoke_el: Vec<Element> = revoke.iter().map(Revoke::to_element).collect();
        for jid in revoked {
            if !revoke_el.is_empty() {
                self.send_secret_payload(jid, revoke_el.clone()).await?;
            }
        }
        let mut payload = revoke_el;
        payload.push(secret.to_element());
        for jid in readers.iter().chain(std::iter::once(&me)) {
            self.send_secret_payload(jid, payload.clone()).await?;
        }
        Ok(secret)
    }

    /// Maintains the whitelist of an encrypted node (owner only): `readers` become members and
    /// `removed` lose their affiliation (XEP-0473: a revoked entity SHOULD also leave the whitelist).
    pub async fn set_node_readers(
        &self,
        service: Option<&Jid>,
        node: &str,
        readers: &[BareJid],
        removed: &[BareJid],
    ) -> Result<(), OxError> {
        let entries: Vec<AffiliationEntry> = readers
            .iter()
            .map(|j| (j, Affiliation::Member))
            .chain(removed.iter().map(|j| (j, Affiliation::None)))
            .map(|(j, affiliation)| AffiliationEntry {
                node: None,
                jid: Some(Jid::from(j.clone())),
                affiliation,
            })
            .collect();
        if entries.is_empty() {
            return Ok(());
        }
        self.conn
            .set_node_affiliations(service, node, &entries)
            .await?;
        Ok(())
    }

    /// Publishes `payload` encrypted with the node's current secret. `options` are the node's
    /// publish-options ([`encrypted_node_options`] gives the whitelist access XEP-0473 recommends).
    pub async fn publish_encrypted(
        &self,
        service: Option<&Jid>,
        node: &str,
        id: Option<&str>,
        payload: &Element,
        options: Option<&PublishOptions>,
    ) -> Result<String, OxError> {
        let state = self
            .node_secrets(service, node)?
            .ok_or_else(|| OxError::UnknownSecret {
                node: node.to_owned(),
                id: "(none)".to_owned(),
            })?;
        let encrypted = state.encrypt(payload)?;
        Ok(self
            .conn
            .publish(service, node, id, encrypted.to_element(), options)
            .await?)
    }

    /// Decrypts an item of an encrypted node with the known secrets.
    pub fn decrypt_item(
        &self,
        service: Option<&Jid>,
        node: &str,
        item: &Item,
    ) -> Result<Element, OxError> {
        let payload = item.payload.as_ref().ok_or(OxError::Parse(
            xmpp_social::error::ParseError::MissingChild {
                element: "item",
                child: "encrypted",
            },
        ))?;
        let encrypted = EncryptedItem::from_element(payload)?;
        let state = self
            .node_secrets(service, node)?
            .ok_or_else(|| OxError::UnknownSecret {
                node: node.to_owned(),
                id: encrypted.key.clone(),
            })?;
        state.decrypt(&encrypted)
    }
}
