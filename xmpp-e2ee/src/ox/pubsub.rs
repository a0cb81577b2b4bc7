//! OpenPGP for pubsub (XEP-0473 version 0.2): items symmetrically encrypted with a shared secret,
//! secrets shared in XEP-0373 `<signcrypt/>` messages, rotation and revocation.
//!
//! [`NodeSecrets`] is the sans-IO state of one node: its secrets (newest last) and its established
//! signer. A `<shared-secret/>` or `<revoke/>` is accepted only from that signer: for a PEP node the
//! owning account; for a node of a pubsub service, the first account whose secret was accepted
//! (trust on first use), or the account that created the secret here.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, FixedOffset, SecondsFormat, Utc};
use jid::BareJid;
use minidom::Element;
use rand::Rng;
use xmpp_social::error::ParseError;
use xmpp_social::xml::{expect_element, parse_bounded, BuilderExt};

use super::error::OxError;
use super::pgp::{self, MAX_MESSAGE_BYTES, MAX_PLAINTEXT_BYTES};
use super::xml::decode_base64;
use super::NS_OX_PUBSUB;

/// The most secrets kept per node.
pub const MAX_SECRETS: usize = 1024;
/// The longest shared secret or id accepted.
pub const MAX_SECRET_LEN: usize = 1024;

fn invalid(element: &'static str, reason: impl Into<String>) -> OxError {
    OxError::Parse(ParseError::InvalidValue {
        element,
        reason: reason.into(),
    })
}

fn attr<'a>(
    el: &'a Element,
    element: &'static str,
    name: &'static str,
) -> Result<&'a str, OxError> {
    el.attr(name)
        .ok_or(OxError::Parse(ParseError::MissingAttribute {
            element,
            attribute: name,
        }))
}

fn bare(element: &'static str, s: &str) -> Result<BareJid, OxError> {
    BareJid::new(s.trim()).map_err(|e| invalid(element, e.to_string()))
}

fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill(&mut buf[..]);
    URL_SAFE_NO_PAD.encode(buf)
}

/// `<shared-secret/>`: a node's shared secret. Its `Debug` hides the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct SharedSecret {
    /// The pubsub/PEP service (`jid`).
    pub service: BareJid,
    /// The node.
    pub node: String,
    /// The secret's id (`key` of the encrypted items).
    pub id: String,
    /// When the secret was generated.
    pub timestamp: DateTime<FixedOffset>,
    /// Whether the secret was revoked (kept to read older items).
    pub revoked: bool,
    /// The `pubsub#type` of the plaintext items.
    pub payload_type: Option<String>,
    /// The secret (the password of the items).
    pub secret: String,
}

impl fmt::Debug for SharedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedSecret")
            .field("service", &self.service)
            .field("node", &self.node)
            .field("id", &self.id)
            .field("timestamp", &self.timestamp)
            .field("revoked", &self.revoked)
            .field("payload_type", &self.payload_type)
            .finish_non_exhaustive()
    }
}

impl SharedSecret {
    /// A new random secret (256 bits) with a random id, stamped now.
    pub fn generate(service: BareJid, node: &str, payload_type: Option<&str>) -> Self {
        SharedSecret {
            service,
            node: node.to_owned(),
            id: random_token(12),
            timestamp: Utc::now().fixed_offset(),
            revoked: false,
            payload_type: payload_type.map(str::to_owned),
            secret: random_token(32),
        }
    }

    /// Reads the element.
    pub fn from_element(el: &Element) -> Result<Self, OxError> {
        expect_element(el, NS_OX_PUBSUB, "shared-secret")?;
        let e = "shared-secret";
        let service = bare(e, attr(el, e, "jid")?)?;
        let node = attr(el, e, "node")?.to_owned();
        let id = attr(el, e, "id")?.to_owned();
        let timestamp = DateTime::parse_from_rfc3339(attr(el, e, "timestamp")?.trim())
            .map_err(|err| invalid(e, err.to_string()))?;
        let revoked = match el.attr("revoked") {
            None | Some("false") | Some("0") => false,
            Some("true") | Some("1") => true,
            Some(_) => return Err(invalid(e, "revoked is not a boolean")),
        };
        let secret = el.text().trim().to_owned();
        if secret.is_empty() || id.is_empty() || node.is_empty() {
            return Err(invalid(e, "empty secret, id or node"));
        }
        if secret.len() > MAX_SECRET_LEN || id.len() > MAX_SECRET_LEN || node.len() > MAX_SECRET_LEN
        {
            return Err(OxError::TooLarge {
                what: "shared-secret",
                size: secret.len().max(id.len()).max(node.len()),
                limit: MAX_SECRET_LEN,
            });
        }
        Ok(SharedSecret {
            service,
            node,
            id,
            timestamp,
            revoked,
            payload_type: el.attr("type").map(str::to_owned),
            secret,
        })
    }

    /// Writes the element.
    pub fn to_element(&self) -> Element {
        Element::builder("shared-secret", NS_OX_PUBSUB)
            .a("jid", self.service.to_string())
            .a("node", self.node.as_str())
            .a("id", self.id.as_str())
            .a(
                "timestamp",
                self.timestamp.to_rfc3339_opts(SecondsFormat::AutoSi, true),
            )
            .a_opt("type", self.payload_type.clone())
            .a_opt("revoked", self.revoked.then_some("true"))
            .append(self.secret.as_str())
            .build()
    }
}

/// `<revoke/>`: a secret that must not encrypt new items any more.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revoke {
    /// The pubsub/PEP service.
    pub service: BareJid,
    /// The node.
    pub node: String,
    /// The revoked secret's id.
    pub id: String,
    /// Human-readable reasons with their optional `xml:lang`.
    pub reasons: Vec<(Option<String>, String)>,
}

const XML_LANG: &str = "xml:lang";

impl Revoke {
    /// Reads the element.
    pub fn from_element(el: &Element) -> Result<Self, OxError> {
        expect_element(el, NS_OX_PUBSUB, "revoke")?;
        let e = "revoke";
        let reasons = el
            .children()
            .filter(|c| c.is("reason", NS_OX_PUBSUB))
            .take(16)
            .map(|c| (c.attr(XML_LANG).map(str::to_owned), c.text()))
            .collect();
        Ok(Revoke {
            service: bare(e, attr(el, e, "jid")?)?,
            node: attr(el, e, "node")?.to_owned(),
            id: attr(el, e, "id")?.to_owned(),
            reasons,
        })
    }

    /// Writes the element.
    pub fn to_element(&self) -> Element {
        Element::builder("revoke", NS_OX_PUBSUB)
            .a("jid", self.service.to_string())
            .a("node", self.node.as_str())
            .a("id", self.id.as_str())
            .append_all(self.reasons.iter().map(|(lang, text)| {
                Element::builder("reason", NS_OX_PUBSUB)
                    .a_opt(XML_LANG, lang.clone())
                    .append(text.as_str())
                    .build()
            }))
            .build()
    }
}

/// `<encrypted xmlns='urn:xmpp:openpgp:pubsub:0' key=ID>`: an encrypted item payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncryptedItem {
    /// The id of the secret it is encrypted with.
    pub key: String,
    /// The password-encrypted OpenPGP message holding the plaintext payload.
    pub message: Vec<u8>,
}

impl EncryptedItem {
    /// Reads the element.
    pub fn from_element(el: &Element) -> Result<Self, OxError> {
        expect_element(el, NS_OX_PUBSUB, "encrypted")?;
        let key = attr(el, "encrypted", "key")?.to_owned();
        let message = decode_base64("encrypted", &el.text(), MAX_MESSAGE_BYTES)?;
        if message.is_empty() {
            return Err(invalid("encrypted", "empty"));
        }
        Ok(EncryptedItem { key, message })
    }

    /// Writes the element.
    pub fn to_element(&self) -> Element {
        Element::builder("encrypted", NS_OX_PUBSUB)
            .a("key", self.key.as_str())
            .append(base64::engine::general_purpose::STANDARD.encode(&self.message))
            .build()
    }

    /// Encrypts an item payload with a secret.
    pub fn encrypt(payload: &Element, secret: &SharedSecret) -> Result<Self, OxError> {
        let text = String::from(payload);
        Ok(EncryptedItem {
            key: secret.id.clone(),
            message: pgp::encrypt_with_password(text.as_bytes(), &secret.secret)?,
        })
    }

    /// Decrypts with a secret: [`OxError::WrongPassword`] when it is the wrong one.
    pub fn decrypt(&self, secret: &SharedSecret) -> Result<Element, OxError> {
        let bytes = pgp::decrypt_with_password(&self.message, &secret.secret)?;
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| invalid("encrypted", "plaintext is not UTF-8"))?;
        Ok(parse_bounded(text.trim(), MAX_PLAINTEXT_BYTES)?)
    }
}

/// What [`NodeSecrets::accept`] changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Accepted {
    /// Ids of secrets learnt.
    pub added: Vec<String>,
    /// Ids of secrets revoked.
    pub revoked: Vec<String>,
}

/// The secrets of one encrypted node and its established signer.
#[derive(Clone, PartialEq, Eq)]
pub struct NodeSecrets {
    /// The service.
    pub service: BareJid,
    /// The node.
    pub node: String,
    /// The account allowed to send secrets and revocations for this node.
    pub signer: Option<BareJid>,
    /// The secrets, oldest first.
    pub secrets: Vec<SharedSecret>,
}

impl fmt::Debug for NodeSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeSecrets")
            .field("service", &self.service)
            .field("node", &self.node)
            .field("signer", &self.signer)
            .field("secrets", &self.secrets)
            .finish()
    }
}

impl NodeSecrets {
    /// No secret yet. For a PEP service (a JID with a local part) the signer is the account itself.
    pub fn new(service: BareJid, node: &str) -> Self {
        let signer = service.node().is_some().then(|| service.clone());
        NodeSecrets {
            service,
            node: node.to_owned(),
            signer,
            secrets: Vec::new(),
        }
    }

    /// The newest secret that is not revoked: the one new items are encrypted with.
    pub fn current(&self) -> Option<&SharedSecret> {
        self.secrets
            .iter()
            .filter(|s| !s.revoked)
            .max_by_key(|s| s.timestamp)
    }

    /// The secret with this id.
    pub fn get(&self, id: &str) -> Option<&SharedSecret> {
        self.secrets.iter().find(|s| s.id == id)
    }

    fn check_room(&self, more: usize) -> Result<(), OxError> {
        if self.secrets.len() + more > MAX_SECRETS {
            return Err(OxError::TooLarge {
                what: "node secrets",
                size: self.secrets.len() + more,
                limit: MAX_SECRETS,
            });
        }
        Ok(())
    }

    /// Creates a new secret as the node's signer `me` (the former current one stays usable for
    /// reading). Fails when another account is the node's established signer.
    pub fn create(
        &mut self,
        me: &BareJid,
        payload_type: Option<&str>,
    ) -> Result<SharedSecret, OxError> {
        if self.signer.as_ref().is_some_and(|s| s != me) {
            return Err(OxError::SecretRefused(format!(
                "{} is the signer of this node",
                self.signer
                    .as_ref()
                    .map(|s| s.to_string())
                    .unwrap_or_default()
            )));
        }
        self.check_room(1)?;
        let mut secret = SharedSecret::generate(self.service.clone(), &self.node, payload_type);
        // Strictly newer than any existing secret, so that `current` is unambiguous.
        if let Some(last) = self.secrets.iter().map(|s| s.timestamp).max() {
            if secret.timestamp <= last {
                secret.timestamp = last
                    .checked_add_signed(chrono::TimeDelta::milliseconds(1))
                    .ok_or_else(|| {
                        OxError::BadTime("secret timestamps at the end of time".to_owned())
                    })?;
            }
        }
        self.signer = Some(me.clone());
        self.secrets.push(secret.clone());
        Ok(secret)
    }

    /// Revokes the current secret; returns the `<revoke/>` to send (None when nothing is current).
    pub fn revoke_current(&mut self, reason: Option<&str>) -> Option<Revoke> {
        let id = self.current()?.id.clone();
        for s in self.secrets.iter_mut().filter(|s| s.id == id) {
            s.revoked = true;
        }
        Some(Revoke {
            service: self.service.clone(),
            node: self.node.clone(),
            id,
            reasons: reason
                .map(|r| vec![(None, r.to_owned())])
                .unwrap_or_default(),
        })
    }

    /// Every secret, as a newcomer must receive them: all but the current one marked revoked.
    pub fn for_newcomer(&self) -> Vec<SharedSecret> {
        let current = self.current().map(|s| s.id.clone());
        self.secrets
            .iter()
            .map(|s| {
                let mut s = s.clone();
                if Some(&s.id) != current.as_ref() {
                    s.revoked = true;
                }
                s
            })
            .collect()
    }

    /// Applies secrets and revocations received from `sender` (already verified as the signer of the
    /// OpenPGP message). Everything is checked first: on any error nothing changes.
    pub fn accept(
        &mut self,
        sender: &BareJid,
        secrets: &[SharedSecret],
        revokes: &[Revoke],
    ) -> Result<Accepted, OxError> {
        if let Some(signer) = &self.signer {
            if signer != sender {
                return Err(OxError::SecretRefused(format!(
                    "{sender} is not the signer of {} on {} ({signer} is)",
                    self.node, self.service
                )));
            }
        }
        for s in secrets {
            if s.service != self.service || s.node != self.node {
                return Err(OxError::SecretRefused(format!(
                    "secret for {} on {} given for another node",
                    s.node, s.service
                )));
            }
            if let Some(known) = self.get(&s.id) {
                if known.secret != s.secret {
                    return Err(OxError::SecretRefused(format!(
                        "secret {} changed its value",
                        s.id
                    )));
                }
            }
        }
        for r in revokes {
            if r.service != self.service || r.node != self.node {
                return Err(OxError::SecretRefused(
                    "revocation for another node".to_owned(),
                ));
            }
        }
        let new = secrets.iter().filter(|s| self.get(&s.id).is_none()).count();
        self.check_room(new)?;
        let mut out = Accepted::default();
        for s in secrets {
            match self.secrets.iter_mut().find(|k| k.id == s.id) {
                Some(k) => {
                    if s.revoked && !k.revoked {
                        k.revoked = true;
                        out.revoked.push(s.id.clone());
                    }
                }
                None => {
                    self.secrets.push(s.clone());
                    out.added.push(s.id.clone());
                }
            }
        }
        for r in revokes {
            if let Some(k) = self.secrets.iter_mut().find(|k| k.id == r.id) {
                if !k.revoked {
                    k.revoked = true;
                    out.revoked.push(r.id.clone());
                }
            }
        }
        self.signer = Some(sender.clone());
        Ok(out)
    }

    /// Decrypts an item payload (`<encrypted/>`) with the secret it names.
    pub fn decrypt(&self, encrypted: &EncryptedItem) -> Result<Element, OxError> {
        let secret = self
            .get(&encrypted.key)
            .ok_or_else(|| OxError::UnknownSecret {
                node: self.node.clone(),
                id: encrypted.key.clone(),
            })?;
        encrypted.decrypt(secret)
    }

    /// Encrypts an item payload with the current secret.
    pub fn encrypt(&self, payload: &Element) -> Result<EncryptedItem, OxError> {
        let secret = self.current().ok_or_else(|| OxError::UnknownSecret {
            node: self.node.clone(),
            id: "(no current secret)".to_owned(),
        })?;
        EncryptedItem::encrypt(payload, secret)
    }

    /// A serialisation for persistent stores (it contains the secrets: store it safely).
    pub fn to_bytes(&self) -> Vec<u8> {
        let el = Element::builder("node-secrets", NS_OX_PUBSUB)
            .a("service", self.service.to_string())
            .a("node", self.node.as_str())
            .a_opt("signer", self.signer.as_ref().map(|s| s.to_string()))
            .append_all(self.secrets.iter().map(SharedSecret::to_element))
            .build();
        String::from(&el).into_bytes()
    }

    /// Reads [`Self::to_bytes`].
    pub fn from_bytes(data: &[u8]) -> Result<Self, OxError> {
        let text = std::str::from_utf8(data).map_err(|_| invalid("node-secrets", "not UTF-8"))?;
        let el = parse_bounded(text, MAX_PLAINTEXT_BYTES.saturating_mul(4))?;
        expect_element(&el, NS_OX_PUBSUB, "node-secrets")?;
        let e = "node-secrets";
        let mut secrets = Vec::new();
        for c in el
            .children()
            .filter(|c| c.is("shared-secret", NS_OX_PUBSUB))
        {
            secrets.push(SharedSecret::from_element(c)?);
        }
        Ok(NodeSecrets {
            service: bare(e, attr(&el, e, "service")?)?,
            node: attr(&el, e, "node")?.to_owned(),
            signer: el.attr("signer").map(|s| bare(e, s)).transpose()?,
            secrets,
        })
    }
}
