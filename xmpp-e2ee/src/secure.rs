//! Encrypted and signed social items: XEP-0277 blog entries, XEP-0471 events and XEP-0346 list
//! entries published with XEP-0473 encryption and XEP-0475/0476 OpenPGP signatures, and read back
//! with transparent decryption and verification.
//!
//! [`SecureSocialExt`] is implemented for [`OxClient`] over any [`Connection`]: the client holds the
//! account's OpenPGP key (which signs), the known public keys of others (which verify) and the node
//! secrets (which encrypt and decrypt).
//!
//! Publishing with [`Protection`]:
//!
//! * `sign`: the plaintext item is signed first (XEP-0475 §4: signatures are made over the plain
//!   text version, before encryption), with the account's OX key, and the `<signature/>` goes to
//!   this account's XEP-0470 attachment of the item;
//! * `encrypt`: the payload is replaced by `<encrypted xmlns='urn:xmpp:openpgp:pubsub:0'/>` made
//!   with the node's current shared secret, and the `<signature/>` attachment is encrypted with the
//!   same secret (XEP-0475: "The `<signature/>` attachment SHOULD be encrypted too"), so that a
//!   reader without the secret learns neither the text nor a signature over it.
//!
//! Reading gives [`SecureItem`]s: the content when it could be read, how it was protected
//! ([`Encryption`]) and every signature attachment with what its check gave ([`SignatureStatus`]).
//! A signature is accepted only when a key of the attaching JID (its OX public keys, fetched from
//! PEP when none is known) made it over exactly the item's plaintext, and the attachment names that
//! JID as signer. Reading never fails on one bad item: each carries its own status.
//!
//! The work without I/O is in [`protect`], [`decrypt_payload`] and [`check_signature_attachment`];
//! the trait fetches items, attachments and keys around them.
//!
//! Readers get secrets in XEP-0373 messages. A server without offline storage (or a reader that was
//! offline) still archives them: [`catch_up_archive`] opens the OX messages of the account's
//! XEP-0313 archive after a given archive id and applies their secrets.

use std::future::Future;

use chrono::{DateTime, Utc};
use jid::{BareJid, Jid};
use minidom::Element;
use sequoia_openpgp::cert::Cert;
use sequoia_openpgp::parse::Parse;
use xmpp_social::attachments::AttachmentsExt;
use xmpp_social::error::ParseError;
use xmpp_social::events::{events_node_config, Event};
use xmpp_social::forms::DataForm;
use xmpp_social::lists::{ListEntry, ListRef};
use xmpp_social::microblog::{
    blog_node_config, friendly_id, Entry, ItemRef, Person, Text, NS_MICROBLOG,
};
use xmpp_social::pubsub::{AccessModel, Item, PreconditionPolicy, PubSubExt, PublishOptions};
use xmpp_social::Connection;

use crate::ox::pubsub::{EncryptedItem, NodeSecrets};
use crate::ox::{OxClient, OxError, OxStore, NS_OX_PUBSUB};
use crate::signing::openpgp::{sign_item, verify_item};
use crate::signing::{wrap_payload, Signature, SigningError, NS_SIGNING};

/// Most archive pages (of [`ARCHIVE_PAGE`] messages) read by one [`catch_up_archive`].
pub const MAX_ARCHIVE_PAGES: usize = 40;
/// Messages per archive page.
pub const ARCHIVE_PAGE: usize = 50;

/// What [`catch_up_archive`] found.
#[derive(Debug, Default)]
pub struct ArchiveCatchUp {
    /// The OX messages opened (their secrets applied), oldest first. Messages this account sent to
    /// others are skipped.
    pub messages: Vec<crate::ox::OxMessage>,
    /// OX messages refused (not for us, unknown or bad signer, refused secrets), with the archive id.
    pub refused: Vec<(String, OxError)>,
    /// The archive id of the last message read: pass it as `after` next time.
    pub last_id: Option<String>,
}

/// Reads the account's XEP-0313 archive after the archive id `after` (from the start when `None`),
/// at most [`MAX_ARCHIVE_PAGES`] pages, and opens every OX message in it with
/// [`OxClient::handle_message`] (which applies XEP-0473 secrets and revocations). Re-reading a
/// message is harmless: known secrets are not changed, revocations stay.
pub async fn catch_up_archive<C, S>(
    ox: &OxClient<C, S>,
    after: Option<&str>,
) -> Result<ArchiveCatchUp, SecureError>
where
    C: Connection,
    S: OxStore + Send + 'static,
{
    use xmpp_social::query::{MamQuery, QueryExt};
    use xmpp_social::rsm::RsmRequest;

    let me = ox.connection().jid().to_bare();
    let mut out = ArchiveCatchUp {
        last_id: after.map(str::to_owned),
        ..Default::default()
    };
    for _ in 0..MAX_ARCHIVE_PAGES {
        let rsm = match &out.last_id {
            Some(id) => RsmRequest::after(ARCHIVE_PAGE, id.clone()),
            None => RsmRequest::first(ARCHIVE_PAGE),
        };
        let query = MamQuery {
            rsm: Some(rsm),
            ..Default::default()
        };
        let page = ox.connection().mam_query(None, &query).await?;
        let got = page.results.len();
        for result in page.results {
            out.last_id = Some(result.id.clone());
            let Ok(message) = xmpp_parsers::message::Message::try_from(result.stanza) else {
                continue;
            };
            let from_me = message.from.as_ref().is_some_and(|f| f.to_bare() == me);
            let to_me = message.to.as_ref().is_none_or(|t| t.to_bare() == me);
            if from_me && !to_me {
                continue;
            }
            match ox.handle_message(&message).await {
                Ok(Some(m)) => out.messages.push(m),
                Ok(None) => {}
                Err(e) => out.refused.push((result.id, e)),
            }
        }
        if page.complete || got < ARCHIVE_PAGE {
            break;
        }
    }
    Ok(out)
}

/// Most signature attachments checked per item (each may cost a key fetch); the others are
/// reported unchecked.
pub const MAX_SIGNATURES_PER_ITEM: usize = 16;

/// Most items read by one call of the reading functions.
pub const MAX_READ_ITEMS: usize = 1000;

/// How an item is protected when it is published.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Protection {
    /// Encrypt with the node's current XEP-0473 secret (the node must have one: see
    /// [`OxClient::new_node_secret`]).
    pub encrypt: bool,
    /// Sign with the account's OX key (XEP-0476).
    pub sign: bool,
}

impl Protection {
    /// Neither encrypted nor signed.
    pub const PLAIN: Protection = Protection {
        encrypt: false,
        sign: false,
    };
    /// Signed only.
    pub const SIGNED: Protection = Protection {
        encrypt: false,
        sign: true,
    };
    /// Encrypted only.
    pub const ENCRYPTED: Protection = Protection {
        encrypt: true,
        sign: false,
    };
    /// Signed, then encrypted.
    pub const ENCRYPTED_SIGNED: Protection = Protection {
        encrypt: true,
        sign: true,
    };
}

/// Errors of publishing or reading protected items.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecureError {
    /// OpenPGP, node secrets or the key store.
    #[error(transparent)]
    Ox(#[from] OxError),
    /// Signing or verifying.
    #[error(transparent)]
    Signing(#[from] SigningError),
    /// The network or the server.
    #[error(transparent)]
    Xmpp(#[from] xmpp_social::Error),
    /// A payload is not what its node holds (not an Atom entry, an event, a submitted form...).
    #[error("invalid payload: {0}")]
    Parse(#[from] ParseError),
    /// Encryption asked for a node that has no current shared secret.
    #[error("no current shared secret for node {node} on {service}")]
    NoSecret {
        /// The service.
        service: String,
        /// The node.
        node: String,
    },
    /// The item has no payload.
    #[error("the item has no payload")]
    NoPayload,
    /// The payload is encrypted with a secret this account does not have.
    #[error("encrypted with secret {key}, which this account does not have")]
    MissingSecret {
        /// The secret's id.
        key: String,
    },
}

/// How a read item was protected, and whether it could be decrypted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Encryption {
    /// Not encrypted.
    Plain,
    /// Encrypted, and decrypted with the secret `key`.
    Decrypted {
        /// The secret's id.
        key: String,
    },
    /// Encrypted with a secret this account does not have (never shared with it, or shared only
    /// after a rotation that left it out).
    MissingSecret {
        /// The secret's id.
        key: String,
    },
    /// Encrypted, but the ciphertext or its plaintext is broken (wrong secret, tampered message,
    /// malformed XML).
    Failed {
        /// Why.
        reason: String,
    },
}

impl Encryption {
    /// Whether the item was encrypted.
    pub fn is_encrypted(&self) -> bool {
        !matches!(self, Encryption::Plain)
    }

    /// Whether the content could be read.
    pub fn is_readable(&self) -> bool {
        matches!(self, Encryption::Plain | Encryption::Decrypted { .. })
    }
}

/// What the check of one signature attachment gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureStatus {
    /// The signature verifies: made by a key of `signer` over exactly this content.
    Verified {
        /// The signer (the JID whose attachment carried the signature).
        signer: BareJid,
        /// The fingerprint of the certificate whose key signed.
        fingerprint: String,
        /// The signing time the signature gives.
        time: DateTime<Utc>,
    },
    /// The attachment of `jid` carries a signature that does not verify (changed content, another
    /// signer named, another key, malformed).
    Invalid {
        /// The JID whose attachment carried it.
        jid: BareJid,
        /// Why.
        reason: String,
    },
    /// The signature could not be checked (item not decrypted, encrypted signature with an unknown
    /// secret, no key known for the signer, attachments unreadable).
    Unchecked {
        /// The JID whose attachment carried it, when known.
        jid: Option<BareJid>,
        /// Why.
        reason: String,
    },
}

/// A read item: its content when readable, with its protection flags.
#[derive(Debug)]
pub struct SecureItem<T> {
    /// The pubsub item id.
    pub item_id: String,
    /// The publisher, when the service exposes it.
    pub publisher: Option<Jid>,
    /// Whether the item was encrypted and could be decrypted.
    pub encryption: Encryption,
    /// Every signature attachment found (empty: not signed).
    pub signatures: Vec<SignatureStatus>,
    /// The content, or why it is not available.
    pub content: Result<T, SecureError>,
}

impl<T> SecureItem<T> {
    /// The signers whose signatures verified.
    pub fn verified_signers(&self) -> Vec<&BareJid> {
        self.signatures
            .iter()
            .filter_map(|s| match s {
                SignatureStatus::Verified { signer, .. } => Some(signer),
                _ => None,
            })
            .collect()
    }

    /// Whether `jid` signed this content: a signature of its attachment verifies, and none fails.
    pub fn is_signed_by(&self, jid: &BareJid) -> bool {
        self.verified_signers().contains(&jid)
            && !self
                .signatures
                .iter()
                .any(|s| matches!(s, SignatureStatus::Invalid { jid: j, .. } if j == jid))
    }

    /// Whether some signature attachment failed to verify.
    pub fn has_invalid_signature(&self) -> bool {
        self.signatures
            .iter()
            .any(|s| matches!(s, SignatureStatus::Invalid { .. }))
    }

    /// One status summing the signatures up: a verified signature when one verifies and no other
    /// attachment of the same JID fails (a third party's broken attachment does not spoil the
    /// publisher's signature, though [`Self::has_invalid_signature`] still tells), else the first
    /// invalid one (a changed item must not look signed), else the first unchecked one; `None` when
    /// the item carries no signature.
    pub fn signature(&self) -> Option<&SignatureStatus> {
        let invalid_from = |jid: &BareJid| {
            self.signatures
                .iter()
                .any(|s| matches!(s, SignatureStatus::Invalid { jid: j, .. } if j == jid))
        };
        self.signatures
            .iter()
            .find(
                |s| matches!(s, SignatureStatus::Verified { signer, .. } if !invalid_from(signer)),
            )
            .or_else(|| {
                self.signatures
                    .iter()
                    .find(|s| matches!(s, SignatureStatus::Invalid { .. }))
            })
            .or_else(|| self.signatures.first())
    }

    /// Turns the content into another type (a parser of the payload), keeping the flags.
    pub fn map<U>(self, f: impl FnOnce(T) -> Result<U, SecureError>) -> SecureItem<U> {
        SecureItem {
            item_id: self.item_id,
            publisher: self.publisher,
            encryption: self.encryption,
            signatures: self.signatures,
            content: self.content.and_then(f),
        }
    }
}

fn is_signature_attachment(el: &Element) -> bool {
    el.is("signature", NS_SIGNING) || el.is("encrypted", NS_OX_PUBSUB)
}

fn bare_service(c: &impl Connection, service: Option<&Jid>) -> BareJid {
    service
        .map(Jid::to_bare)
        .unwrap_or_else(|| c.jid().to_bare())
}

/// Protected publishing and transparent reading of social items over an [`OxClient`].
///
/// `service` `None` is the account's own PEP service.
pub trait SecureSocialExt {
    /// Publishes `payload` on `node` with `protection` (see the module documentation) and returns
    /// where it is. `options` are the publish-options of the item.
    fn publish_protected(
        &self,
        service: Option<&Jid>,
        node: &str,
        id: Option<&str>,
        payload: Element,
        protection: Protection,
        options: Option<&PublishOptions>,
    ) -> impl Future<Output = Result<ItemRef, SecureError>> + Send;

    /// Opens one item of `node`: decrypts it when it is encrypted and checks its signature
    /// attachments.
    fn open_item(
        &self,
        service: Option<&Jid>,
        node: &str,
        item: &Item,
    ) -> impl Future<Output = SecureItem<Element>> + Send;

    /// Reads up to `limit` (at most [`MAX_READ_ITEMS`]) items of `node` and opens each.
    fn read_protected(
        &self,
        service: Option<&Jid>,
        node: &str,
        limit: Option<usize>,
    ) -> impl Future<Output = Result<Vec<SecureItem<Element>>, SecureError>> + Send;

    /// Publishes a XEP-0277 blog entry (on `urn:xmpp:microblog:0` when `node` is `None`), filling in
    /// what `MicroblogExt::post` fills in (item id from the title, atom:id, author, dates), with the
    /// XEP-0472 node configuration and `access`.
    fn post_entry(
        &self,
        service: Option<&Jid>,
        node: Option<&str>,
        entry: Entry,
        access: AccessModel,
        protection: Protection,
    ) -> impl Future<Output = Result<ItemRef, SecureError>> + Send;

    /// Reads blog entries (newest order as the service gives them), decrypted and checked.
    fn read_entries(
        &self,
        service: Option<&Jid>,
        node: Option<&str>,
        limit: Option<usize>,
    ) -> impl Future<Output = Result<Vec<SecureItem<Entry>>, SecureError>> + Send;

    /// Publishes a XEP-0471 event on `node` (the event's agenda node when `None`) under `id` (random
    /// when `None`), with the events node configuration and `access`.
    fn publish_event(
        &self,
        service: Option<&Jid>,
        node: Option<&str>,
        id: Option<&str>,
        event: &Event,
        access: AccessModel,
        protection: Protection,
    ) -> impl Future<Output = Result<ItemRef, SecureError>> + Send;

    /// Reads the events of `node`, decrypted and checked.
    fn read_events(
        &self,
        service: Option<&Jid>,
        node: &str,
        limit: Option<usize>,
    ) -> impl Future<Output = Result<Vec<SecureItem<Event>>, SecureError>> + Send;

    /// Adds (or, with an existing `id`, replaces) an entry of a XEP-0346 list: `form` is the submitted
    /// form (`ListTemplate::submission` builds and checks it). The list's nodes must exist
    /// (`ListsExt::create_list`).
    fn add_list_entry(
        &self,
        list: &ListRef,
        id: Option<&str>,
        form: &DataForm,
        protection: Protection,
    ) -> impl Future<Output = Result<ItemRef, SecureError>> + Send;

    /// Reads the entries of a list, decrypted and checked.
    fn read_list(
        &self,
        list: &ListRef,
        limit: Option<usize>,
    ) -> impl Future<Output = Result<Vec<SecureItem<ListEntry>>, SecureError>> + Send;
}

/// A payload ready to publish: what goes in the item and the signature attachment, if signed.
#[derive(Debug, Clone, PartialEq)]
pub struct Protected {
    /// The item payload: the plaintext, or its `<encrypted/>`.
    pub payload: Element,
    /// The `<signature/>` for the signer's XEP-0470 attachment, or its `<encrypted/>` when the item
    /// is encrypted.
    pub signature: Option<Element>,
}

/// Signs and encrypts a payload, without I/O: signed first (over the plaintext, as an item of
/// `service`) by `signer` (a certificate with its secret signing key, and its JID), then encrypted,
/// with its signature, with the current secret of `secrets` when given.
pub fn protect(
    payload: Element,
    service: &BareJid,
    signer: Option<(&Cert, &BareJid)>,
    secrets: Option<&NodeSecrets>,
) -> Result<Protected, SecureError> {
    let signature = match signer {
        Some((cert, jid)) => {
            Some(sign_item(cert, jid, service, &wrap_payload(Some(&payload)))?.to_element())
        }
        None => None,
    };
    let Some(secrets) = secrets else {
        return Ok(Protected { payload, signature });
    };
    if secrets.current().is_none() {
        return Err(SecureError::NoSecret {
            service: secrets.service.to_string(),
            node: secrets.node.clone(),
        });
    }
    let signature = match signature {
        Some(s) => Some(secrets.encrypt(&s)?.to_element()),
        None => None,
    };
    Ok(Protected {
        payload: secrets.encrypt(&payload)?.to_element(),
        signature,
    })
}

/// Opens an item payload, without I/O: decrypts an `<encrypted/>` one with `secrets` (the node's),
/// passes any other through.
pub fn decrypt_payload(
    payload: Option<&Element>,
    secrets: Option<&NodeSecrets>,
) -> (Encryption, Result<Element, SecureError>) {
    match payload {
        None => (Encryption::Plain, Err(SecureError::NoPayload)),
        Some(p) if p.is("encrypted", NS_OX_PUBSUB) => match EncryptedItem::from_element(p) {
            Err(e) => (
                Encryption::Failed {
                    reason: e.to_string(),
                },
                Err(e.into()),
            ),
            Ok(encrypted) => {
                let key = encrypted.key.clone();
                match secrets.map(|s| s.decrypt(&encrypted)) {
                    None | Some(Err(OxError::UnknownSecret { .. })) => (
                        Encryption::MissingSecret { key: key.clone() },
                        Err(SecureError::MissingSecret { key }),
                    ),
                    Some(Err(e)) => (
                        Encryption::Failed {
                            reason: e.to_string(),
                        },
                        Err(e.into()),
                    ),
                    Some(Ok(el)) => (Encryption::Decrypted { key }, Ok(el)),
                }
            }
        },
        Some(p) => (Encryption::Plain, Ok(p.clone())),
    }
}

/// Checks one signature attachment element (`<signature/>`, or its `<encrypted/>` opened with
/// `secrets`) published by `jid` for the item of `service` whose plaintext payload is `plaintext`,
/// against `certs` (the certificates of `jid`), without I/O.
pub fn check_signature_attachment(
    service: &BareJid,
    plaintext: &Element,
    jid: &BareJid,
    attachment: &Element,
    secrets: Option<&NodeSecrets>,
    certs: &[Cert],
) -> SignatureStatus {
    let invalid = |reason: String| SignatureStatus::Invalid {
        jid: jid.clone(),
        reason,
    };
    let unchecked = |reason: String| SignatureStatus::Unchecked {
        jid: Some(jid.clone()),
        reason,
    };
    let element = if attachment.is("encrypted", NS_OX_PUBSUB) {
        let encrypted = match EncryptedItem::from_element(attachment) {
            Ok(e) => e,
            Err(e) => return invalid(format!("encrypted signature: {e}")),
        };
        let Some(secrets) = secrets else {
            return unchecked(format!(
                "signature encrypted with secret {}, which this account does not have",
                encrypted.key
            ));
        };
        match secrets.decrypt(&encrypted) {
            Ok(el) => el,
            Err(OxError::UnknownSecret { id, .. }) => {
                return unchecked(format!(
                    "signature encrypted with secret {id}, which this account does not have"
                ))
            }
            Err(e) => return invalid(format!("encrypted signature: {e}")),
        }
    } else {
        attachment.clone()
    };
    let signature = match Signature::try_from(&element) {
        Ok(s) => s,
        Err(e) => return invalid(e.to_string()),
    };
    if certs.is_empty() {
        return unchecked(format!("no OpenPGP key known for {jid}"));
    }
    match verify_item(service, &wrap_payload(Some(plaintext)), &signature, certs) {
        Ok(v) if v.signer == *jid => SignatureStatus::Verified {
            signer: v.signer,
            fingerprint: crate::ox::pgp::fingerprint_string(&v.fingerprint),
            time: v.time,
        },
        Ok(v) => invalid(format!("signed by {}, but attached by {jid}", v.signer)),
        Err(e) => invalid(e.to_string()),
    }
}

/// The certificates of `jid`: the known OX keys, or those on PEP when none is known or `refresh`.
/// The flag tells whether they were fetched.
async fn signer_certs<C, S>(
    ox: &OxClient<C, S>,
    jid: &BareJid,
    refresh: bool,
) -> Result<(Vec<Cert>, bool), OxError>
where
    C: Connection,
    S: OxStore + Send + 'static,
{
    let known = if refresh {
        Vec::new()
    } else {
        ox.known_keys(jid)?
    };
    let (keys, fetched) = if known.is_empty() {
        (ox.fetch_keys(jid).await?, true)
    } else {
        (known, false)
    };
    Ok((keys.iter().map(|k| k.cert().clone()).collect(), fetched))
}

/// [`check_signature_attachment`] with the keys of `jid`: the known ones, fetched again from PEP
/// once when they do not verify (the signer may have a new key).
async fn check_signature<C, S>(
    ox: &OxClient<C, S>,
    service: &BareJid,
    plaintext: &Element,
    jid: &BareJid,
    attachment: &Element,
    secrets: Option<&NodeSecrets>,
) -> SignatureStatus
where
    C: Connection,
    S: OxStore + Send + 'static,
{
    let mut refresh = false;
    loop {
        let (certs, fetched) = match signer_certs(ox, jid, refresh).await {
            Ok(c) => c,
            Err(e) => {
                return SignatureStatus::Unchecked {
                    jid: Some(jid.clone()),
                    reason: format!("keys of {jid}: {e}"),
                }
            }
        };
        let status =
            check_signature_attachment(service, plaintext, jid, attachment, secrets, &certs);
        if matches!(status, SignatureStatus::Invalid { .. }) && !fetched {
            refresh = true;
            continue;
        }
        return status;
    }
}

/// The read path of [`SecureSocialExt::read_entries`], [`SecureSocialExt::read_events`] and
/// [`SecureSocialExt::read_list`]: reads and opens the items of `node`
/// ([`SecureSocialExt::read_protected`]), then turns each readable payload into its kind with
/// `parse` (given the item id and publisher too), keeping the flags.
async fn read_parsed<C, S, T>(
    ox: &OxClient<C, S>,
    service: Option<&Jid>,
    node: &str,
    limit: Option<usize>,
    parse: fn(&str, Option<&Jid>, Element) -> Result<T, SecureError>,
) -> Result<Vec<SecureItem<T>>, SecureError>
where
    C: Connection,
    S: OxStore + Send + 'static,
{
    let items = ox.read_protected(service, node, limit).await?;
    Ok(items
        .into_iter()
        .map(|item| {
            let (id, publisher) = (item.item_id.clone(), item.publisher.clone());
            item.map(|el| parse(&id, publisher.as_ref(), el))
        })
        .collect())
}

impl<C, S> SecureSocialExt for OxClient<C, S>
where
    C: Connection,
    S: OxStore + Send + 'static,
{
    fn publish_protected(
        &self,
        service: Option<&Jid>,
        node: &str,
        id: Option<&str>,
        payload: Element,
        protection: Protection,
        options: Option<&PublishOptions>,
    ) -> impl Future<Output = Result<ItemRef, SecureError>> + Send {
        let service = service.cloned();
        let node = node.to_owned();
        let id = id.map(str::to_owned);
        let options = options.cloned();
        async move {
            let conn = self.connection();
            let service_bare = bare_service(conn, service.as_ref());
            let me = conn.jid().to_bare();
            let cert = if protection.sign {
                let key = self.secret_key()?;
                Some(
                    Cert::from_bytes(&key.to_bytes()?)
                        .map_err(|e| SigningError::OpenPgp(e.to_string()))?,
                )
            } else {
                None
            };
            let secrets = if protection.encrypt {
                Some(
                    self.node_secrets(service.as_ref(), &node)?
                        .unwrap_or_else(|| NodeSecrets::new(service_bare.clone(), &node)),
                )
            } else {
                None
            };
            let Protected {
                payload: published,
                signature,
            } = protect(
                payload,
                &service_bare,
                cert.as_ref().map(|c| (c, &me)),
                secrets.as_ref(),
            )?;
            let item_id = conn
                .publish(
                    service.as_ref(),
                    &node,
                    id.as_deref(),
                    published,
                    options.as_ref(),
                )
                .await?;
            let target = ItemRef::new(Jid::from(service_bare), node, item_id);
            if let Some(signature) = signature {
                conn.create_attachments_node(&target).await?;
                conn.update_attachments(&target, move |a| {
                    a.extra.retain(|e| !is_signature_attachment(e));
                    a.extra.push(signature);
                })
                .await?;
            }
            Ok(target)
        }
    }

    fn open_item(
        &self,
        service: Option<&Jid>,
        node: &str,
        item: &Item,
    ) -> impl Future<Output = SecureItem<Element>> + Send {
        let service = service.cloned();
        let node = node.to_owned();
        let item = item.clone();
        async move {
            let conn = self.connection();
            let service_bare = bare_service(conn, service.as_ref());
            let secrets = match self.node_secrets(service.as_ref(), &node) {
                Ok(s) => s,
                Err(e) => {
                    return SecureItem {
                        item_id: item.id,
                        publisher: item.publisher,
                        encryption: Encryption::Failed {
                            reason: e.to_string(),
                        },
                        signatures: Vec::new(),
                        content: Err(e.into()),
                    }
                }
            };
            let (encryption, content) = decrypt_payload(item.payload.as_ref(), secrets.as_ref());
            let target = ItemRef::new(Jid::from(service_bare.clone()), node, item.id.clone());
            let signatures = match &content {
                Err(_) => Vec::new(),
                Ok(plain) => match conn.attachments(&target).await {
                    Err(e) => vec![SignatureStatus::Unchecked {
                        jid: None,
                        reason: format!("attachments unreadable: {e}"),
                    }],
                    Ok(view) => {
                        let mut out = Vec::new();
                        for ja in &view.by_jid {
                            for el in ja
                                .attachments
                                .extra
                                .iter()
                                .filter(|e| is_signature_attachment(e))
                            {
                                if out.len() >= MAX_SIGNATURES_PER_ITEM {
                                    out.push(SignatureStatus::Unchecked {
                                        jid: Some(ja.jid.clone()),
                                        reason: format!(
                                            "more than {MAX_SIGNATURES_PER_ITEM} signatures"
                                        ),
                                    });
                                    break;
                                }
                                out.push(
                                    check_signature(
                                        self,
                                        &service_bare,
                                        plain,
                                        &ja.jid,
                                        el,
                                        secrets.as_ref(),
                                    )
                                    .await,
                                );
                            }
                        }
                        out
                    }
                },
            };
            SecureItem {
                item_id: item.id,
                publisher: item.publisher,
                encryption,
                signatures,
                content,
            }
        }
    }

    fn read_protected(
        &self,
        service: Option<&Jid>,
        node: &str,
        limit: Option<usize>,
    ) -> impl Future<Output = Result<Vec<SecureItem<Element>>, SecureError>> + Send {
        let service = service.cloned();
        let node = node.to_owned();
        let limit = limit.unwrap_or(MAX_READ_ITEMS).min(MAX_READ_ITEMS);
        async move {
            let items = self
                .connection()
                .get_all_items(service.as_ref(), &node, 100, Some(limit))
                .await?;
            let mut out = Vec::with_capacity(items.len());
            for item in items.iter().take(limit) {
                out.push(self.open_item(service.as_ref(), &node, item).await);
            }
            Ok(out)
        }
    }

    fn post_entry(
        &self,
        service: Option<&Jid>,
        node: Option<&str>,
        entry: Entry,
        access: AccessModel,
        protection: Protection,
    ) -> impl Future<Output = Result<ItemRef, SecureError>> + Send {
        let service = service.cloned();
        let node = node.unwrap_or(NS_MICROBLOG).to_owned();
        async move {
            let conn = self.connection();
            let me = conn.jid().to_bare();
            let service_bare = bare_service(conn, service.as_ref());
            let mut entry = entry;
            let id = entry.item_id().unwrap_or_else(|| {
                friendly_id(
                    &entry
                        .title
                        .as_ref()
                        .map(Text::plain_text)
                        .unwrap_or_default(),
                )
            });
            if entry.id.is_none() {
                let item = ItemRef::new(Jid::from(service_bare), node.clone(), id.clone());
                entry.id = Some(item.to_uri().to_string());
            }
            if entry.authors.is_empty() {
                entry.authors.push(Person::from_jid(&me.into(), None));
            }
            entry.prepare_for_publish(&id);
            entry.validate_for_publish()?;
            let options = PublishOptions::new(
                blog_node_config(access),
                PreconditionPolicy::ReconfigureNode,
            );
            self.publish_protected(
                service.as_ref(),
                &node,
                Some(&id),
                Element::from(&entry),
                protection,
                Some(&options),
            )
            .await
        }
    }

    fn read_entries(
        &self,
        service: Option<&Jid>,
        node: Option<&str>,
        limit: Option<usize>,
    ) -> impl Future<Output = Result<Vec<SecureItem<Entry>>, SecureError>> + Send {
        let service = service.cloned();
        let node = node.unwrap_or(NS_MICROBLOG).to_owned();
        async move {
            read_parsed(self, service.as_ref(), &node, limit, |_, _, el| {
                Ok(Entry::try_from(&el)?)
            })
            .await
        }
    }

    fn publish_event(
        &self,
        service: Option<&Jid>,
        node: Option<&str>,
        id: Option<&str>,
        event: &Event,
        access: AccessModel,
        protection: Protection,
    ) -> impl Future<Output = Result<ItemRef, SecureError>> + Send {
        let service = service.cloned();
        let node = node.unwrap_or(event.ns.agenda_node()).to_owned();
        let id = id
            .map(str::to_owned)
            .unwrap_or_else(xmpp_social::microblog::random_id);
        let checked = event.validate().map(|()| Element::from(event));
        async move {
            let payload = checked?;
            let options = PublishOptions::new(
                events_node_config(access),
                PreconditionPolicy::ReconfigureNode,
            );
            self.publish_protected(
                service.as_ref(),
                &node,
                Some(&id),
                payload,
                protection,
                Some(&options),
            )
            .await
        }
    }

    fn read_events(
        &self,
        service: Option<&Jid>,
        node: &str,
        limit: Option<usize>,
    ) -> impl Future<Output = Result<Vec<SecureItem<Event>>, SecureError>> + Send {
        let service = service.cloned();
        let node = node.to_owned();
        async move {
            read_parsed(self, service.as_ref(), &node, limit, |_, _, el| {
                Ok(Event::try_from(&el)?)
            })
            .await
        }
    }

    fn add_list_entry(
        &self,
        list: &ListRef,
        id: Option<&str>,
        form: &DataForm,
        protection: Protection,
    ) -> impl Future<Output = Result<ItemRef, SecureError>> + Send {
        let list = list.clone();
        let id = id
            .map(str::to_owned)
            .unwrap_or_else(xmpp_social::microblog::random_id);
        let payload = form.to_element();
        async move {
            self.publish_protected(
                Some(&list.service),
                &list.submitted_node(),
                Some(&id),
                payload,
                protection,
                None,
            )
            .await
        }
    }

    fn read_list(
        &self,
        list: &ListRef,
        limit: Option<usize>,
    ) -> impl Future<Output = Result<Vec<SecureItem<ListEntry>>, SecureError>> + Send {
        let list = list.clone();
        async move {
            let node = list.submitted_node();
            read_parsed(
                self,
                Some(&list.service),
                &node,
                limit,
                |id, publisher, el| {
                    Ok(ListEntry::from_item(&Item {
                        id: id.to_owned(),
                        publisher: publisher.cloned(),
                        payload: Some(el),
                    })?)
                },
            )
            .await
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use sequoia_openpgp::parse::Parse;

    fn jid(s: &str) -> BareJid {
        BareJid::new(s).unwrap()
    }

    fn verified(s: &str) -> SignatureStatus {
        SignatureStatus::Verified {
            signer: jid(s),
            fingerprint: "F".repeat(40),
            time: Utc::now(),
        }
    }

    fn invalid(s: &str) -> SignatureStatus {
        SignatureStatus::Invalid {
            jid: jid(s),
            reason: "bad".into(),
        }
    }

    fn item(signatures: Vec<SignatureStatus>) -> SecureItem<()> {
        SecureItem {
            item_id: "x".into(),
            publisher: None,
            encryption: Encryption::Plain,
            signatures,
            content: Ok(()),
        }
    }

    #[test]
    fn signature_summary() {
        assert_eq!(item(vec![]).signature(), None);
        let i = item(vec![verified("a@x")]);
        assert!(i.is_signed_by(&jid("a@x")));
        assert!(matches!(
            i.signature(),
            Some(SignatureStatus::Verified { .. })
        ));
        // Someone else's broken attachment: reported, the signature stands.
        let i = item(vec![invalid("m@x"), verified("a@x")]);
        assert!(i.is_signed_by(&jid("a@x")));
        assert!(i.has_invalid_signature());
        assert!(matches!(
            i.signature(),
            Some(SignatureStatus::Verified { .. })
        ));
        // A failing attachment of the signer itself wins.
        let i = item(vec![verified("a@x"), invalid("a@x")]);
        assert!(!i.is_signed_by(&jid("a@x")));
        assert!(matches!(
            i.signature(),
            Some(SignatureStatus::Invalid { .. })
        ));
        let i = item(vec![SignatureStatus::Unchecked {
            jid: None,
            reason: "offline".into(),
        }]);
        assert!(matches!(
            i.signature(),
            Some(SignatureStatus::Unchecked { .. })
        ));
        assert!(i.verified_signers().is_empty());
    }

    #[test]
    fn protection_flags_and_mapping() {
        assert_eq!(Protection::default(), Protection::PLAIN);
        assert_eq!(
            Protection::ENCRYPTED_SIGNED,
            Protection {
                encrypt: true,
                sign: true
            }
        );
        assert!(Encryption::MissingSecret { key: "k".into() }.is_encrypted());
        assert!(!Encryption::MissingSecret { key: "k".into() }.is_readable());
        assert!(Encryption::Plain.is_readable());
        let mapped = item(vec![verified("a@x")]).map(|()| Ok(5));
        assert_eq!(mapped.content.unwrap(), 5);
        let failed =
            item(vec![]).map(|()| -> Result<u8, SecureError> { Err(SecureError::NoPayload) });
        assert!(matches!(failed.content, Err(SecureError::NoPayload)));
    }

    fn cert(jid: &str) -> Cert {
        let key = crate::ox::SecretKey::generate(jid).unwrap();
        Cert::from_bytes(&key.to_bytes().unwrap()).unwrap()
    }

    #[test]
    fn protect_then_open_without_io() {
        let alice = jid("alice@example.org");
        let alice_cert = cert("alice@example.org");
        let public = alice_cert.clone().strip_secret_key_material();
        let mut secrets = NodeSecrets::new(alice.clone(), NS_MICROBLOG);
        let payload: Element =
            "<entry xmlns='http://www.w3.org/2005/Atom'><title>Hello</title></entry>"
                .parse()
                .unwrap();
        // No current secret: refused.
        assert!(matches!(
            protect(payload.clone(), &alice, None, Some(&secrets)),
            Err(SecureError::NoSecret { .. })
        ));
        secrets.create(&alice, None).unwrap();
        let sealed = protect(
            payload.clone(),
            &alice,
            Some((&alice_cert, &alice)),
            Some(&secrets),
        )
        .unwrap();
        assert!(sealed.payload.is("encrypted", NS_OX_PUBSUB));
        let sig = sealed.signature.unwrap();
        assert!(sig.is("encrypted", NS_OX_PUBSUB));

        let (enc, content) = decrypt_payload(Some(&sealed.payload), Some(&secrets));
        assert!(matches!(enc, Encryption::Decrypted { .. }));
        let plain = content.unwrap();
        assert_eq!(plain, payload);
        let status = check_signature_attachment(
            &alice,
            &plain,
            &alice,
            &sig,
            Some(&secrets),
            std::slice::from_ref(&public),
        );
        assert!(matches!(status, SignatureStatus::Verified { ref signer, .. } if *signer == alice));

        // One character changed.
        let changed: Element = String::from(&plain)
            .replace("Hello", "Hellp")
            .parse()
            .unwrap();
        let status = check_signature_attachment(
            &alice,
            &changed,
            &alice,
            &sig,
            Some(&secrets),
            std::slice::from_ref(&public),
        );
        assert!(
            matches!(status, SignatureStatus::Invalid { .. }),
            "{status:?}"
        );
        // Attached by someone else, or checked against someone else's key.
        let mallory = jid("mallory@example.org");
        let mallory_public = cert("mallory@example.org").strip_secret_key_material();
        for (who, certs) in [(&mallory, &public), (&alice, &mallory_public)] {
            let status = check_signature_attachment(
                &alice,
                &plain,
                who,
                &sig,
                Some(&secrets),
                std::slice::from_ref(certs),
            );
            assert!(
                matches!(status, SignatureStatus::Invalid { .. }),
                "{status:?}"
            );
        }
        // Without the secret: nothing readable, signature unchecked.
        let (enc, content) = decrypt_payload(Some(&sealed.payload), None);
        assert!(matches!(enc, Encryption::MissingSecret { .. }));
        assert!(matches!(content, Err(SecureError::MissingSecret { .. })));
        let status = check_signature_attachment(&alice, &plain, &alice, &sig, None, &[public]);
        assert!(matches!(status, SignatureStatus::Unchecked { .. }));
        // Hostile payloads: typed failures.
        for bad in [
            "<encrypted xmlns='urn:xmpp:openpgp:pubsub:0' key='k'>!!</encrypted>",
            "<encrypted xmlns='urn:xmpp:openpgp:pubsub:0'>AAAA</encrypted>",
            "<encrypted xmlns='urn:xmpp:openpgp:pubsub:0' key='k'/>",
        ] {
            let el: Element = bad.parse().unwrap();
            let (enc, content) = decrypt_payload(Some(&el), Some(&secrets));
            assert!(matches!(enc, Encryption::Failed { .. }), "{bad}");
            assert!(content.is_err());
        }
        let wrong_key: Element = format!(
            "<encrypted xmlns='urn:xmpp:openpgp:pubsub:0' key='{}'>AAAA</encrypted>",
            secrets.current().unwrap().id
        )
        .parse()
        .unwrap();
        assert!(matches!(
            decrypt_payload(Some(&wrong_key), Some(&secrets)).0,
            Encryption::Failed { .. }
        ));
    }

    #[test]
    fn signature_attachments_recognised() {
        let sig: Element = "<signature xmlns='urn:xmpp:pubsub-signing:0'/>"
            .parse()
            .unwrap();
        let enc: Element = "<encrypted xmlns='urn:xmpp:openpgp:pubsub:0' key='k'/>"
            .parse()
            .unwrap();
        let other: Element = "<noticed xmlns='urn:xmpp:pubsub-attachments:1'/>"
            .parse()
            .unwrap();
        assert!(is_signature_attachment(&sig));
        assert!(is_signature_attachment(&enc));
        assert!(!is_signature_attachment(&other));
    }
}
